"""domain/timezones.py: a recipient's zone is its valid `timezone` variable, else the zone
its number tells (phonenumbers' data, MAIN_ZONES when a prefix spans several), else none;
`is_zone` knows only real IANA zones and `zone(None)` is UTC. Pure: no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from phonenumbers.tzdata import TIMEZONE_DATA

from domain.timezones import MAIN_ZONES, TIMEZONE_VARIABLE, is_zone, zone, zone_of_number, zone_of_recipient


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+33612345678", "Europe/Paris"),  # France, mobile
        ("+33142685300", "Europe/Paris"),  # France, Paris landline
        ("+14155550100", "America/Los_Angeles"),  # US, area code 415 (San Francisco)
        ("+12125550100", "America/New_York"),  # US, area code 212 (Manhattan)
        ("+13125550100", "America/Chicago"),  # US, area code 312 (Chicago)
        ("+81312345678", "Asia/Tokyo"),  # Japan, Tokyo landline
        ("+819012345678", "Asia/Tokyo"),  # Japan, mobile
        ("+5511987654321", "America/Sao_Paulo"),  # Brazil, São Paulo mobile
        ("+493012345678", "Europe/Berlin"),  # Germany, Berlin landline
        ("+4915112345678", "Europe/Berlin"),  # Germany, mobile
        ("+390612345678", "Europe/Rome"),  # Italy, Rome landline: national number keeps its 0
        ("+79161234567", "Europe/Moscow"),  # Russia, mobile
        ("+61412345678", "Australia/Sydney"),  # Australia, mobile
        ("+447911123456", "Europe/London"),  # UK, mobile
        ("+442071234567", "Europe/London"),  # UK, London landline
    ],
)
def test_a_number_tells_its_zone(phone: str, expected: str) -> None:
    assert zone_of_number(phone) == expected
    assert is_zone(expected)


def test_india_is_one_zone_at_five_and_a_half_hours() -> None:
    # phonenumbers names it Asia/Calcutta, the backward link of Asia/Kolkata: either is fine
    # as long as the machine knows it and it is UTC+05:30
    found = zone_of_number("+919812345678")
    assert found in {"Asia/Calcutta", "Asia/Kolkata"}
    assert is_zone(found)
    assert zone(found).utcoffset(datetime(2026, 6, 15, 12)) == timedelta(hours=5, minutes=30)


def test_the_italian_leading_zero_is_part_of_the_prefix() -> None:
    # +39 06 698… is the Vatican's range inside Rome's 06; read without its 0 the same
    # digits would be a mobile-like +39 66… prefix, which maps elsewhere
    assert zone_of_number("+39066981234") == "Europe/Vatican"
    assert zone_of_number("+3966981234") != "Europe/Vatican"


def candidates(phone: str) -> tuple[str, ...]:
    """The zones phonenumbers' data gives the number's longest known prefix."""
    digits = phone.removeprefix("+")
    return next(TIMEZONE_DATA[digits[:n]] for n in range(len(digits), 0, -1) if digits[:n] in TIMEZONE_DATA)


@pytest.mark.parametrize(
    ("phone", "code"),
    [
        # UK mobiles span the Crown Dependencies too: London, not Guernsey (first alphabetically)
        ("+447911123456", 44),
        # Italian mobiles: Rome and the Vatican
        ("+393471234567", 39),
        # US toll-free: the whole of +1, forty-odd zones
        ("+18005550100", 1),
        # Russian mobiles are Moscow's in phonenumbers' data; +7 alone spans Russia and Kazakhstan
        ("+7", 7),
        ("+61", 61),
        ("+55", 55),
    ],
)
def test_a_prefix_of_several_zones_takes_the_countrys_main_zone(phone: str, code: int) -> None:
    several = candidates(phone)
    assert len(several) > 1 and MAIN_ZONES[code] in several
    assert zone_of_number(phone) == MAIN_ZONES[code]


def test_the_main_zone_wins_over_alphabetical_order() -> None:
    assert sorted(candidates("+447911123456"))[0] == "Europe/Guernsey"
    assert sorted(candidates("+61"))[0] == "Australia/Adelaide"
    assert sorted(candidates("+7"))[0] == "Asia/Almaty"
    assert [zone_of_number(p) for p in ("+447911123456", "+61", "+7")] == [
        "Europe/London",
        "Australia/Sydney",
        "Europe/Moscow",
    ]


def test_without_a_main_zone_among_the_candidates_the_first_alphabetically() -> None:
    # Kazakhstan shares +7 with Russia: MAIN_ZONES[7] (Moscow) is not one of its zones
    assert set(candidates("+77051234567")) == {"Asia/Almaty", "Asia/Aqtobe"}
    assert MAIN_ZONES[7] not in candidates("+77051234567")
    assert zone_of_number("+77051234567") == "Asia/Almaty"


@pytest.mark.parametrize("phone", ["+999123456", "+80012345678"])
def test_a_number_the_data_cannot_place_has_no_zone(phone: str) -> None:
    # an unassigned calling code, the international freephone range (no zone in the data)
    assert zone_of_number(phone) is None


def test_the_plus_is_optional() -> None:
    assert zone_of_number("33612345678") == "Europe/Paris"


def test_every_main_zone_is_a_known_zone_and_a_candidate_of_its_calling_code() -> None:
    # otherwise the entry could never be chosen, or zone() could not load what was chosen
    for code, main in MAIN_ZONES.items():
        assert is_zone(main), main
        assert main in TIMEZONE_DATA[str(code)], (code, main)


def test_every_zone_a_number_can_tell_loads() -> None:
    # message.time_zone is read back with zone(): a name phonenumbers gives that this
    # machine's tzdata does not know would break every plan of that recipient
    told = {z for zones in TIMEZONE_DATA.values() for z in zones}
    assert told and not {z for z in told if not is_zone(z)}


def test_the_timezone_variable_overrides_the_number() -> None:
    assert TIMEZONE_VARIABLE == "timezone"
    assert zone_of_recipient("+33612345678", {"timezone": "Asia/Tokyo"}) == "Asia/Tokyo"
    assert zone_of_recipient("+999123456", {"timezone": "Europe/Kyiv"}) == "Europe/Kyiv"


def test_the_timezone_variable_is_read_without_surrounding_whitespace() -> None:
    assert zone_of_recipient("+33612345678", {"timezone": "  America/New_York\t"}) == "America/New_York"


@pytest.mark.parametrize("given", ["Mars/Base", "europe/paris", "", "   ", "localtime", "Factory", 3, None, True])
def test_a_timezone_variable_that_is_not_a_zone_falls_back_to_the_number(given: object) -> None:
    assert zone_of_recipient("+33612345678", {"timezone": given}) == "Europe/Paris"
    assert zone_of_recipient("+999123456", {"timezone": given}) is None


def test_without_the_variable_the_number_decides() -> None:
    assert zone_of_recipient("+12125550100", {}) == "America/New_York"
    assert zone_of_recipient("+12125550100", {"name": "Ann", "Timezone": "Asia/Tokyo"}) == "America/New_York"


@pytest.mark.parametrize(
    "name",
    [
        "localtime",
        "Factory",
        "posixrules",
        "posix/Europe/Paris",
        "right/UTC",
        "",
        "Mars/Base",
        "Europe/Paris ",
        "europe/paris",
    ],
)
def test_is_zone_refuses_what_is_not_a_zone_a_user_means(name: str) -> None:
    assert not is_zone(name)


@pytest.mark.parametrize(
    "name", ["UTC", "Europe/Kyiv", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Etc/GMT+5"]
)
def test_is_zone_accepts_iana_zones(name: str) -> None:
    assert is_zone(name)


def test_no_zone_is_utc() -> None:
    assert zone(None) == ZoneInfo("UTC")
    assert zone("") == ZoneInfo("UTC")
    assert datetime(2026, 6, 15, 12, tzinfo=zone(None)).utcoffset() == timedelta(0)


def test_zone_loads_a_stored_name_once() -> None:
    paris = zone("Europe/Paris")
    assert paris.key == "Europe/Paris" and zone("Europe/Paris") is paris
    assert datetime(2026, 1, 15, 12, tzinfo=paris).astimezone(UTC).hour == 11
    assert datetime(2026, 7, 15, 12, tzinfo=paris).astimezone(UTC).hour == 10
