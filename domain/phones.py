"""Phone numbers: validate and normalise to E.164 with `phonenumbers`.

`phonenumbers.parse` + `is_valid_number` cost about 70 µs a number here, which would
make a 1,000,000-row import spend over a minute in validation alone. Input that is
already E.164 (`+` and digits, the usual case for exported lists) takes a fast path:
the same metadata and the same rules as `phonenumbers.is_valid_number`, with the
patterns compiled once per region. The fast path only ever says "valid"; anything it
does not accept goes through the library's own parser, which stays the authority on
what is invalid and why. `tests/domain/test_phones.py` checks both paths agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, NumberParseException

_E164 = re.compile(r"\+([1-9]\d{6,14})")
# Any match makes a number valid, so the order only matters for speed: the common
# kinds first.
_DESC_NAMES = (
    "mobile",
    "fixed_line",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)

_Matcher = Callable[[str], bool]


class InvalidPhone(ValueError):
    """The phone cannot be used; the message says why, for the user."""


def _desc_matcher(desc: object) -> tuple[frozenset[int], re.Pattern[str]] | None:
    pattern = getattr(desc, "national_number_pattern", None) if desc is not None else None
    if not pattern:
        return None
    lengths = frozenset(getattr(desc, "possible_length", ()) or ())
    return lengths, re.compile(pattern)


def _region_validator(region: str) -> _Matcher | None:
    """`_number_type_helper(nsn, metadata) != UNKNOWN`, with patterns compiled once."""
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None:
        return None
    general = _desc_matcher(metadata.general_desc)
    if general is None:
        return None
    kinds = [m for m in (_desc_matcher(getattr(metadata, n)) for n in _DESC_NAMES) if m]

    def valid(nsn: str) -> bool:
        size = len(nsn)
        g_len, g_re = general
        if (g_len and size not in g_len) or not g_re.fullmatch(nsn):
            return False
        # Any specific type matching makes the number's type known, hence valid.
        return any((not k_len or size in k_len) and k_re.fullmatch(nsn) for k_len, k_re in kinds)

    return valid


@cache
def _country_rules(country_code: int) -> tuple[tuple[re.Pattern[str] | None, _Matcher], ...]:
    rules = []
    for region in COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()):
        metadata = PhoneMetadata.metadata_for_region(region, None)
        validator = _region_validator(region)
        if metadata is None or validator is None:
            continue
        leading = re.compile(metadata.leading_digits) if metadata.leading_digits else None
        rules.append((leading, validator))
    return tuple(rules)


def _fast_valid(digits: str) -> bool:
    for size in (1, 2, 3):
        country_code = int(digits[:size])
        if country_code in COUNTRY_CODE_TO_REGION_CODE:
            nsn = digits[size:]
            rules = _country_rules(country_code)
            if len(rules) == 1:
                return rules[0][1](nsn)
            # As region_code_for_number: the first region whose leading digits match
            # decides; without leading digits, the first region the number is valid in.
            for leading, valid in rules:
                if leading is not None:
                    if leading.match(nsn):
                        return valid(nsn)
                elif valid(nsn):
                    return True
            return False
    return False


def normalize_phone(raw: str) -> str:
    """The E.164 form of `raw`, or InvalidPhone with a reason a user understands."""
    text = raw.strip()
    match = _E164.fullmatch(text)
    if match is not None and _fast_valid(match.group(1)):
        return text
    if not text:
        raise InvalidPhone("phone is empty")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, None)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            raise InvalidPhone("not in international format: start with + and the country code") from None
        raise InvalidPhone(f"not a phone number ({exc._msg})") from None
    if not phonenumbers.is_valid_number(number):
        reason = phonenumbers.is_possible_number_with_reason(number)
        if reason == phonenumbers.ValidationResult.TOO_SHORT:
            raise InvalidPhone("too short for its country")
        if reason == phonenumbers.ValidationResult.TOO_LONG:
            raise InvalidPhone("too long for its country")
        raise InvalidPhone("not a valid number for its country")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)
