"""What makes a usable recipient: an E.164 phone and a flat object of variables."""

from __future__ import annotations

import json
import math
from typing import Any

from domain.campaign_input import storable
from domain.messages import MAX_VARIABLES_BYTES
from domain.phones import InvalidPhone, normalize_phone
from domain.timezones import TIMEZONE_VARIABLE, is_zone

#: Most recipients one addRecipients call takes; bulk lists go through the CSV import.
MAX_RECIPIENTS_PER_CALL = 10_000


class InvalidRecipient(ValueError):
    """Why one recipient was refused, for the InvalidRecipient.reason the user reads."""


def variables_json(variables: Any) -> str:
    """The stored JSON of a recipient's variables: a flat object of scalars."""
    if variables is None:
        return "{}"
    if not isinstance(variables, dict):
        raise InvalidRecipient("variables must be an object of names to values")
    for key, value in variables.items():
        if not isinstance(key, str) or not key:
            raise InvalidRecipient("variable names must be non-empty strings")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidRecipient(f"variable {key!r} must be a string, number or boolean")
        if isinstance(value, float) and not math.isfinite(value):  # JSON has no Infinity or NaN
            raise InvalidRecipient(f"variable {key!r} must be a finite number")
        # PostgreSQL text and jsonb cannot hold NUL; refuse it on every database alike.
        if "\x00" in key or (isinstance(value, str) and "\x00" in value):
            raise InvalidRecipient(f"variable {key!r} contains a NUL character")
        if not storable(key) or (isinstance(value, str) and not storable(value)):
            raise InvalidRecipient(f"variable {key!r} contains an invalid character (a lone UTF-16 surrogate)")
    _check_zone(variables)
    return _encode(variables)


def _check_zone(variables: dict[str, Any]) -> None:
    """The `timezone` variable places the recipient (domain/timezones.py): a value that
    is not an IANA zone is refused rather than silently ignored. Empty means unset."""
    given = variables.get(TIMEZONE_VARIABLE)
    if given is None or given == "":
        return
    if not isinstance(given, str) or not is_zone(given.strip()):
        raise InvalidRecipient(
            f"variable {TIMEZONE_VARIABLE!r} must be an IANA time zone such as Europe/Paris (got {given!r})"
        )


def text_variables_json(variables: dict[str, str]) -> str:
    """variables_json for values known to be strings from a CSV (NUL checked already):
    the per-row checks above cost more than the encoding on a million rows."""
    return _encode(variables)


# One encoder: json.dumps with options builds a new JSONEncoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _encode(variables: dict[str, Any]) -> str:
    text = _ENCODER.encode(variables)
    # A character is at most 4 bytes in UTF-8: short texts need no byte count.
    if len(text) * 4 > MAX_VARIABLES_BYTES and len(text.encode()) > MAX_VARIABLES_BYTES:
        raise InvalidRecipient(f"variables are larger than {MAX_VARIABLES_BYTES} bytes")
    return text


def csv_recipient(phone: str, variables: dict[str, str]) -> tuple[str, str]:
    """recipient() for a CSV row, whose cells are strings already checked for NUL."""
    try:
        normalized = normalize_phone(phone)
    except InvalidPhone as exc:
        raise InvalidRecipient(str(exc)) from None
    _check_zone(variables)
    return normalized, text_variables_json(variables)


def recipient(phone: Any, variables: Any) -> tuple[str, str]:
    """(E.164 phone, variables JSON) or InvalidRecipient."""
    if not isinstance(phone, str):
        raise InvalidRecipient("phone must be a string")
    try:
        normalized = normalize_phone(phone)
    except InvalidPhone as exc:
        raise InvalidRecipient(str(exc)) from None
    return normalized, variables_json(variables)
