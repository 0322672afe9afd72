"""The E.164 fast path never accepts what phonenumbers rejects."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from domain.phones import InvalidPhone, _fast_valid, normalize_phone


def test_fast_path_agrees_with_phonenumbers_on_random_numbers() -> None:
    rng = random.Random(20261126)
    codes = sorted(COUNTRY_CODE_TO_REGION_CODE)
    accepted = 0
    for _ in range(60_000):
        digits = str(rng.choice(codes)) + "".join(rng.choice("0123456789") for _ in range(rng.randint(5, 12)))
        if len(digits) > 15:
            continue
        if _fast_valid(digits):
            accepted += 1
            assert phonenumbers.is_valid_number(phonenumbers.parse("+" + digits, None)), digits
    assert accepted > 1_000  # the sample exercised the fast path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+14155552671", "+14155552671"),
        (" +44 7911 123456 ", "+447911123456"),
        ("+49 (151) 2345-6789", "+4915123456789"),
        ("0044 7911 123456", "+447911123456"),
    ],
)
def test_normalises_to_e164(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("4155552671", "international format"),
        ("+1415555", "too short"),
        ("+999123456789", "international format"),
        ("hello", "not a phone number"),
        ("+1 41", "too short"),
    ],
)
def test_invalid_phones_say_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhone, match=reason):
        normalize_phone(raw)
