"""A recipient's time zone, for local-time sending and send windows (domain/delivery.py).

In order: the recipient's `timezone` variable when it names an IANA zone; else the
zone its number tells, from phonenumbers' time-zone data (the number's longest known
prefix, as `phonenumbers.timezone.time_zones_for_geographical_number` reads it);
else none, and the campaign's zone applies (UTC if it has none).

A prefix may map to several zones (a mobile range of a country that spans many, or a
country code alone). The choice, documented in README: the country's main zone from
`MAIN_ZONES` when it is among them (its capital's, where most of its people live), else
the first in alphabetical order. A recipient can always be placed exactly with the
`timezone` variable.

Pure: phonenumbers' and zoneinfo's data are read-only tables.
"""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from phonenumbers import PhoneNumber
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE
from phonenumbers.timezone import UNKNOWN_TIMEZONE, time_zones_for_geographical_number

#: the recipient variable that overrides the number's zone
TIMEZONE_VARIABLE = "timezone"

#: for calling codes whose numbers may map to several zones: the one chosen when it is a
#: candidate (the capital's zone)
MAIN_ZONES: dict[int, str] = {
    1: "America/New_York",
    7: "Europe/Moscow",
    34: "Europe/Madrid",
    39: "Europe/Rome",
    44: "Europe/London",
    47: "Europe/Oslo",
    52: "America/Mexico_City",
    55: "America/Sao_Paulo",
    61: "Australia/Sydney",
    62: "Asia/Jakarta",
    64: "Pacific/Auckland",
    243: "Africa/Kinshasa",
    262: "Indian/Reunion",
    299: "America/Godthab",
    351: "Europe/Lisbon",
    353: "Europe/London",
    358: "Europe/Helsinki",
    593: "America/Guayaquil",
    599: "America/Curacao",
    686: "Pacific/Tarawa",
    689: "Pacific/Tahiti",
    691: "Pacific/Ponape",
    976: "Asia/Ulaanbaatar",
}


#: files of the zoneinfo directory that are not zones a user means
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules", "posix", "right"})


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


def is_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone this machine knows (tzdata)."""
    return name in _zones()


def zone(name: str | None) -> ZoneInfo:
    """The ZoneInfo of a stored zone name; UTC for none."""
    return _zone(name or "UTC")


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _split(digits: str) -> tuple[int, str] | None:
    for length in (1, 2, 3):
        code = int(digits[:length])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            return code, digits[length:]
    return None


def zone_of_number(phone: str) -> str | None:
    """The zone an E.164 number tells, or None when the data knows none."""
    split = _split(phone.removeprefix("+"))
    if split is None:
        return None
    code, national = split
    zeros = len(national) - len(national.lstrip("0"))
    number = PhoneNumber(
        country_code=code,
        national_number=int(national or "0"),
        italian_leading_zero=zeros > 0 or None,
        number_of_leading_zeros=zeros if zeros > 1 else None,
    )
    candidates = [z for z in time_zones_for_geographical_number(number) if z != UNKNOWN_TIMEZONE]
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    main = MAIN_ZONES.get(code)
    return main if main in candidates else sorted(candidates)[0]


def zone_of_recipient(phone: str, variables: dict[str, object]) -> str | None:
    """The recipient's zone: its `timezone` variable if valid, else its number's."""
    given = variables.get(TIMEZONE_VARIABLE)
    if isinstance(given, str) and is_zone(given.strip()):
        return given.strip()
    return zone_of_number(phone)
