"""domain/delivery.py: a send window opens and closes at wall-clock times of a zone
(overnight, weekdays, both daylight-saving changes, PEP 495 for times that do not exist
or occur twice); a local-time send is 09:00 in each recipient's zone, the next day where
that had passed; a DeliveryPlan turns both into when a message of a zone may start, and
why it waits. Pure: no I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from domain.delivery import (
    WEEKDAYS,
    DeliveryPlan,
    LocalSend,
    SendWindow,
    Weekday,
    parse_clock,
    parse_day,
    parse_window,
    window_closing,
    window_opening,
)
from domain.errors import ValidationFailed
from domain.timezones import zone
from domain.waiting import WaitReason

EVERY_DAY = [d.value for d in WEEKDAYS]
WEEKDAYS_ONLY = ["MON", "TUE", "WED", "THU", "FRI"]

# 2026-06-15 is a Monday, in summer time north of the equator and winter time in Sydney
MONDAY = date(2026, 6, 15)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def local(zone_name: str, y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A wall-clock time in that zone, as the UTC instant the module returns."""
    return datetime(y, mo, d, h, mi, tzinfo=zone(zone_name)).astimezone(UTC)


def window(days: list[str], start: str, end: str, time_zone: str | None = None) -> SendWindow:
    return parse_window(days, start, end, time_zone)


def refusal(
    days: list[str], start: str | time, end: str | time, time_zone: str | None, path: tuple[str, ...] = ("sendWindow",)
) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as refused:
        parse_window(days, start, end, time_zone, path)
    return refused.value


# --- parse_clock and parse_day


@pytest.mark.parametrize(("text", "expected"), [("09:00", time(9)), ("00:00", time(0)), (" 23:59 ", time(23, 59))])
def test_a_clock_time_is_hh_mm(text: str, expected: time) -> None:
    assert parse_clock(text, ("sendWindow", "start")) == expected


def test_a_clock_time_given_as_a_time_is_kept() -> None:
    assert parse_clock(time(9, 15), ("localTime",)) == time(9, 15)


@pytest.mark.parametrize("text", ["9:00", "24:00", "12:60", "09:00:00", "09h00", "", "noon", None, 900])
def test_anything_else_is_refused_naming_the_field(text: object) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_clock(text, ("input", "sendWindow", "end"))  # type: ignore[arg-type]
    assert refused.value.field == ("input", "sendWindow", "end")
    assert refused.value.message.startswith("end is a time of day as HH:MM")


def test_a_day_is_yyyy_mm_dd() -> None:
    assert parse_day(" 2026-06-15 ", ("localSend", "date")) == MONDAY


@pytest.mark.parametrize("text", ["2026-02-30", "15/06/2026", "tomorrow", "", None])
def test_a_day_that_is_not_a_date_is_refused_naming_the_field(text: object) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_day(text, ("localSend", "date"))  # type: ignore[arg-type]
    assert refused.value.field == ("localSend", "date")
    assert "YYYY-MM-DD" in refused.value.message


# --- SendWindow and parse_window


def test_a_window_is_its_days_times_and_zone() -> None:
    w = parse_window(["FRI", "MON", "MON"], time(9), time(17, 30), "Europe/Paris")
    assert w == SendWindow(frozenset({Weekday.MON, Weekday.FRI}), time(9), time(17, 30), "Europe/Paris")


def test_a_window_without_a_zone_is_in_each_recipients() -> None:
    assert parse_window(WEEKDAYS_ONLY, time(9), time(17), None).time_zone is None


def test_the_zone_is_stored_without_surrounding_whitespace() -> None:
    assert parse_window(WEEKDAYS_ONLY, time(9), time(17), "  Asia/Tokyo ").time_zone == "Asia/Tokyo"


def test_times_given_with_a_zone_keep_only_their_wall_clock() -> None:
    w = parse_window(WEEKDAYS_ONLY, time(9, tzinfo=UTC), time(17, tzinfo=UTC), None)
    assert w.start == time(9) and w.start.tzinfo is None and w.end.tzinfo is None


def test_an_empty_days_list_never_opens() -> None:
    refused = refusal([], time(9), time(17), None)
    assert refused.field == ("sendWindow", "days")
    assert "never open" in refused.message


@pytest.mark.parametrize("days", [["MON", "Funday"], ["mon"], ["MONDAY"], [""]])
def test_a_day_that_is_not_a_weekday_is_refused(days: list[str]) -> None:
    refused = refusal(days, time(9), time(17), None)
    assert refused.field == ("sendWindow", "days")
    assert "MON, TUE, WED, THU, FRI, SAT, SUN" in refused.message


def test_a_window_that_ends_when_it_starts_never_opens() -> None:
    refused = refusal(WEEKDAYS_ONLY, time(9), time(9), None)
    assert refused.field == ("sendWindow", "end")
    assert "never open" in refused.message


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (time(9, 0, 30), time(17), "start"),
        (time(9, 0, 0, 1), time(17), "start"),
        (time(9), time(17, 0, 30), "end"),
        (time(9), time(17, 0, 0, 1), "end"),
    ],
)
def test_times_are_whole_minutes(start: time, end: time, field: str) -> None:
    refused = refusal(WEEKDAYS_ONLY, start, end, None)
    assert refused.field == ("sendWindow", field)
    assert refused.message == f"sendWindow.{field} is a whole minute (HH:MM)."


@pytest.mark.parametrize("time_zone", ["Mars/Base", "localtime", "Factory", "", "   ", "europe/paris"])
def test_a_zone_that_is_not_an_iana_zone_is_refused(time_zone: str) -> None:
    refused = refusal(WEEKDAYS_ONLY, time(9), time(17), time_zone)
    assert refused.field == ("sendWindow", "timeZone")
    assert "IANA" in refused.message


def test_a_start_or_end_that_is_not_a_clock_time_is_refused_naming_it() -> None:
    assert refusal(WEEKDAYS_ONLY, "9am", "17:00", None).field == ("sendWindow", "start")
    assert refusal(WEEKDAYS_ONLY, "09:00", "25:00", None).field == ("sendWindow", "end")


def test_the_error_names_the_field_under_the_path_it_is_given() -> None:
    path = ("input", "window")
    assert refusal([], "09:00", "17:00", None, path).field == ("input", "window", "days")
    assert refusal(["MON"], "09:00", "09:00", None, path).field == ("input", "window", "end")
    refused = refusal(["MON"], "09:00", "17:00", "Nowhere", path)
    assert refused.field == ("input", "window", "timeZone")
    assert refused.message.startswith("window.timeZone 'Nowhere'")


@pytest.mark.parametrize(
    "w",
    [
        window(WEEKDAYS_ONLY, "09:00", "17:30", "Europe/Paris"),
        window(["SUN", "SAT"], "22:00", "06:00", None),
        window(EVERY_DAY, "00:00", "23:59", "America/New_York"),
    ],
)
def test_a_window_survives_its_json(w: SendWindow) -> None:
    assert SendWindow.from_json(w.to_json()) == w


def test_the_json_lists_days_in_week_order() -> None:
    text = window(["SUN", "MON", "WED"], "22:00", "06:00").to_json()
    assert text == '{"days": ["MON", "WED", "SUN"], "start": "22:00", "end": "06:00", "timeZone": null}'
    assert SendWindow.from_json('{"days": ["MON"], "start": "09:00", "end": "17:00"}').time_zone is None


def test_a_window_describes_itself() -> None:
    assert window(["FRI", "MON"], "09:00", "17:30", "Europe/Paris").describe() == "MON, FRI 09:00-17:30 (Europe/Paris)"
    assert window(["SAT"], "22:00", "06:00").describe() == "SAT 22:00-06:00 (each recipient's time zone)"


# --- window_opening and window_closing

OFFICE = window(WEEKDAYS_ONLY, "09:00", "17:00")
PARIS = "Europe/Paris"


def test_open_now_has_no_opening_and_closes_at_its_end() -> None:
    at = local(PARIS, 2026, 6, 15, 10)
    assert window_opening(OFFICE, PARIS, at) is None
    assert window_closing(OFFICE, PARIS, at) == local(PARIS, 2026, 6, 15, 17) == utc(2026, 6, 15, 15)


def test_the_start_is_inside_and_the_end_outside() -> None:
    assert window_opening(OFFICE, PARIS, local(PARIS, 2026, 6, 15, 9)) is None
    assert window_opening(OFFICE, PARIS, local(PARIS, 2026, 6, 15, 17)) == local(PARIS, 2026, 6, 16, 9)
    assert window_closing(OFFICE, PARIS, local(PARIS, 2026, 6, 15, 17)) is None


def test_before_the_opening_it_opens_the_same_day() -> None:
    at = local(PARIS, 2026, 6, 15, 6, 30)
    assert window_opening(OFFICE, PARIS, at) == local(PARIS, 2026, 6, 15, 9) == utc(2026, 6, 15, 7)
    assert window_closing(OFFICE, PARIS, at) is None


def test_after_closing_it_opens_the_next_allowed_day() -> None:
    assert window_opening(OFFICE, PARIS, local(PARIS, 2026, 6, 16, 18)) == local(PARIS, 2026, 6, 17, 9)
    only_thursday = window(["THU"], "09:00", "17:00")
    assert window_opening(only_thursday, PARIS, local(PARIS, 2026, 6, 18, 18)) == local(PARIS, 2026, 6, 25, 9)


@pytest.mark.parametrize(
    "at",
    [
        local(PARIS, 2026, 6, 19, 21),  # Friday evening
        local(PARIS, 2026, 6, 20, 12),  # Saturday
        local(PARIS, 2026, 6, 21, 23, 59),  # Sunday night
        local(PARIS, 2026, 6, 22, 8, 59),  # Monday, a minute early
    ],
)
def test_the_weekend_is_skipped(at: datetime) -> None:
    assert window_opening(OFFICE, PARIS, at) == local(PARIS, 2026, 6, 22, 9) == utc(2026, 6, 22, 7)


NIGHT = window(EVERY_DAY, "22:00", "06:00")


def test_an_overnight_window_is_open_late_and_early() -> None:
    late, early, noon = local(PARIS, 2026, 6, 15, 23), local(PARIS, 2026, 6, 16, 5), local(PARIS, 2026, 6, 16, 12)
    assert window_opening(NIGHT, PARIS, late) is None
    assert window_closing(NIGHT, PARIS, late) == local(PARIS, 2026, 6, 16, 6)
    assert window_opening(NIGHT, PARIS, early) is None
    assert window_closing(NIGHT, PARIS, early) == local(PARIS, 2026, 6, 16, 6)
    assert window_opening(NIGHT, PARIS, noon) == local(PARIS, 2026, 6, 16, 22)
    assert window_closing(NIGHT, PARIS, noon) is None


def test_an_overnight_window_opens_on_its_days_and_closes_the_next_morning() -> None:
    friday_night = window(["FRI"], "22:00", "06:00")
    # Saturday 05:00 is still Friday's night; Friday 05:00 would be Thursday's, not a day of the window
    assert window_opening(friday_night, PARIS, local(PARIS, 2026, 6, 20, 5)) is None
    assert window_opening(friday_night, PARIS, local(PARIS, 2026, 6, 19, 5)) == local(PARIS, 2026, 6, 19, 22)
    assert window_opening(friday_night, PARIS, local(PARIS, 2026, 6, 20, 6)) == local(PARIS, 2026, 6, 26, 22)


def test_a_window_ending_at_midnight_closes_at_the_end_of_its_day() -> None:
    evening = window(["MON"], "18:00", "00:00")
    assert window_opening(evening, PARIS, local(PARIS, 2026, 6, 15, 23, 59)) is None
    assert window_closing(evening, PARIS, local(PARIS, 2026, 6, 15, 23)) == local(PARIS, 2026, 6, 16, 0)


def test_the_zone_decides_what_the_hour_is() -> None:
    at = utc(2026, 6, 15, 12)  # Monday: 21:00 in Tokyo, 08:00 in New York, 14:00 in Paris
    assert window_opening(OFFICE, "Asia/Tokyo", at) == local("Asia/Tokyo", 2026, 6, 16, 9) == utc(2026, 6, 16, 0)
    assert window_opening(OFFICE, "America/New_York", at) == utc(2026, 6, 15, 13)
    assert window_opening(OFFICE, PARIS, at) is None
    assert window_opening(OFFICE, None, at) is None  # UTC
    assert window_closing(OFFICE, None, at) == utc(2026, 6, 15, 17)


def test_the_day_is_the_zones_day() -> None:
    # Friday 20:00 UTC is already Saturday in Tokyo: the weekend there
    at = utc(2026, 6, 19, 20)
    assert window_opening(OFFICE, "Asia/Tokyo", at) == local("Asia/Tokyo", 2026, 6, 22, 9)
    # Monday 01:00 UTC is still Sunday in Los Angeles
    at = utc(2026, 6, 22, 1)
    assert window_opening(OFFICE, "America/Los_Angeles", at) == local("America/Los_Angeles", 2026, 6, 22, 9)


# Daylight-saving changes of 2026: Paris on the last Sundays of March (29) and October (25),
# New York on the second Sunday of March (8) and the first of November (1).
DST_OPENINGS = [
    # zone, the day before, 09:00 there in UTC, the day after, 09:00 there in UTC
    (PARIS, date(2026, 3, 28), 8, date(2026, 3, 30), 7),
    (PARIS, date(2026, 10, 24), 7, date(2026, 10, 26), 8),
    ("America/New_York", date(2026, 3, 7), 14, date(2026, 3, 9), 13),
    ("America/New_York", date(2026, 10, 31), 13, date(2026, 11, 2), 14),
]


@pytest.mark.parametrize(("zone_name", "before", "before_h", "after", "after_h"), DST_OPENINGS)
def test_a_window_opens_at_nine_local_on_each_side_of_a_dst_change(
    zone_name: str, before: date, before_h: int, after: date, after_h: int
) -> None:
    w = window(EVERY_DAY, "09:00", "17:00")
    for day, hour in ((before, before_h), (after, after_h)):
        nine = datetime.combine(day, time(hour), UTC)
        midnight = datetime.combine(day, time(0), zone(zone_name))
        assert window_opening(w, zone_name, midnight) == nine
        assert nine.astimezone(zone(zone_name)).time() == time(9)
        # and eight hours later, at 17:00 there, it closes
        assert window_closing(w, zone_name, nine) == nine + timedelta(hours=8)
    # closed the evening before the change, it next opens on the day of the change, at 09:00 there
    change = before + timedelta(days=1)
    evening = datetime.combine(before, time(20), zone(zone_name))
    assert window_opening(w, zone_name, evening) == local(zone_name, change.year, change.month, change.day, 9)
    assert window_opening(w, zone_name, evening) == datetime.combine(change, time(after_h), UTC)


@pytest.mark.parametrize(
    ("zone_name", "change", "opens_utc"),
    [
        # Paris springs from 02:00 to 03:00 winter time: 02:30 is read at +01:00, so 01:30 UTC (03:30 summer time)
        (PARIS, date(2026, 3, 29), utc(2026, 3, 29, 1, 30)),
        # New York springs from 02:00 to 03:00 EST: 02:30 is read at -05:00, so 07:30 UTC (03:30 EDT)
        ("America/New_York", date(2026, 3, 8), utc(2026, 3, 8, 7, 30)),
    ],
)
def test_a_start_that_does_not_exist_on_the_spring_forward_day_follows_pep_495(
    zone_name: str, change: date, opens_utc: datetime
) -> None:
    w = window(EVERY_DAY, "02:30", "17:00")
    the_night_before = datetime.combine(change, time(0), zone(zone_name))
    assert window_opening(w, zone_name, the_night_before) == opens_utc
    assert opens_utc.astimezone(zone(zone_name)).time() == time(3, 30)
    # at 03:00 summer time the wall clock has passed 02:30, but the window opens half an hour later
    three = opens_utc - timedelta(minutes=30)
    assert three.astimezone(zone(zone_name)).time() == time(3)
    assert window_opening(w, zone_name, three) == opens_utc
    assert window_opening(w, zone_name, opens_utc) is None
    # the next day 02:30 exists again
    next_day = change + timedelta(days=1)
    expected = datetime.combine(next_day, time(2, 30), zone(zone_name))
    assert window_opening(w, zone_name, datetime.combine(change, time(20), zone(zone_name))) == expected.astimezone(UTC)


@pytest.mark.parametrize(
    ("zone_name", "start", "change", "opens_utc"),
    [
        # Paris falls back from 03:00 to 02:00: 02:30 occurs twice, the first at +02:00
        (PARIS, "02:30", date(2026, 10, 25), utc(2026, 10, 25, 0, 30)),
        # New York falls back from 02:00 to 01:00: 01:30 occurs twice, the first at -04:00
        ("America/New_York", "01:30", date(2026, 11, 1), utc(2026, 11, 1, 5, 30)),
    ],
)
def test_a_start_that_occurs_twice_on_the_fall_back_day_is_its_first_occurrence(
    zone_name: str, start: str, change: date, opens_utc: datetime
) -> None:
    w = window(EVERY_DAY, start, "17:00")
    assert window_opening(w, zone_name, datetime.combine(change, time(0), zone(zone_name))) == opens_utc
    assert window_opening(w, zone_name, opens_utc + timedelta(hours=1)) is None  # the second occurrence: open


def test_a_window_inside_the_spring_forward_gap_does_not_open_that_day() -> None:
    # 02:30-03:00 does not exist in Paris on 2026-03-29: read by PEP 495 it would "open" at
    # 03:30 summer time and "close" at 03:00, so it is skipped, not announced as an opening
    gap = window(["SUN", "MON"], "02:30", "03:00")
    assert window_opening(gap, PARIS, utc(2026, 3, 29, 0)) == local(PARIS, 2026, 3, 30, 2, 30)
    assert window_opening(gap, PARIS, utc(2026, 3, 29, 1, 30)) == local(PARIS, 2026, 3, 30, 2, 30)
    assert DeliveryPlan(window=gap).release(PARIS, utc(2026, 3, 29, 0)) == (
        local(PARIS, 2026, 3, 30, 2, 30),
        WaitReason.WINDOW,
    )
    # a week earlier it opens as usual
    assert window_opening(gap, PARIS, utc(2026, 3, 22, 0)) == local(PARIS, 2026, 3, 22, 2, 30)


def test_an_overnight_window_over_a_dst_change_lasts_an_hour_more_or_less() -> None:
    w = window(["SAT"], "22:00", "06:00")
    spring = local(PARIS, 2026, 3, 28, 22)
    assert window_closing(w, PARIS, spring) == local(PARIS, 2026, 3, 29, 6) == spring + timedelta(hours=7)
    fall = local(PARIS, 2026, 10, 24, 22)
    assert window_closing(w, PARIS, fall) == local(PARIS, 2026, 10, 25, 6) == fall + timedelta(hours=9)


# --- LocalSend

NINE_ON_MONDAY = LocalSend(MONDAY, time(9), decided_at=utc(2026, 6, 14, 12))

FIVE_ZONES = [
    ("Europe/Paris", utc(2026, 6, 15, 7)),  # +02:00 in summer
    ("America/New_York", utc(2026, 6, 15, 13)),  # -04:00 in summer
    ("Asia/Tokyo", utc(2026, 6, 15, 0)),  # +09:00, no DST
    ("Australia/Sydney", utc(2026, 6, 14, 23)),  # +10:00, its winter
    ("America/Los_Angeles", utc(2026, 6, 15, 16)),  # -07:00 in summer
]


@pytest.mark.parametrize(("zone_name", "expected"), FIVE_ZONES)
def test_each_zone_gets_nine_local(zone_name: str, expected: datetime) -> None:
    assert NINE_ON_MONDAY.instant(zone_name) == expected == NINE_ON_MONDAY.on_the_day(zone_name)
    assert expected.astimezone(zone(zone_name)).replace(tzinfo=None) == datetime(2026, 6, 15, 9)


def test_without_a_zone_it_is_nine_utc() -> None:
    assert NINE_ON_MONDAY.instant(None) == utc(2026, 6, 15, 9)


def test_a_zone_where_it_had_passed_gets_the_next_day() -> None:
    # scheduled at 05:00 UTC: already 09:00 past in Sydney (23:00 UTC the day before) and Tokyo (00:00 UTC)
    send = LocalSend(MONDAY, time(9), decided_at=utc(2026, 6, 15, 5))
    assert send.instant("Asia/Tokyo") == utc(2026, 6, 16, 0)
    assert send.instant("Australia/Sydney") == utc(2026, 6, 15, 23)
    assert send.instant("Europe/Paris") == utc(2026, 6, 15, 7)
    assert send.instant("America/Los_Angeles") == utc(2026, 6, 15, 16)
    # on_the_day is the chosen date whatever was decided
    assert send.on_the_day("Asia/Tokyo") == utc(2026, 6, 15, 0)


def test_a_time_reached_exactly_when_scheduled_has_passed() -> None:
    send = LocalSend(MONDAY, time(9), decided_at=utc(2026, 6, 15, 7))
    assert send.instant("Europe/Paris") == utc(2026, 6, 16, 7)
    just_before = LocalSend(MONDAY, time(9), decided_at=utc(2026, 6, 15, 6, 59))
    assert just_before.instant("Europe/Paris") == utc(2026, 6, 15, 7)


@pytest.mark.parametrize(
    ("zone_name", "day", "expected"),
    [
        (PARIS, date(2026, 3, 28), utc(2026, 3, 28, 8)),
        (PARIS, date(2026, 3, 30), utc(2026, 3, 30, 7)),
        (PARIS, date(2026, 10, 24), utc(2026, 10, 24, 7)),
        (PARIS, date(2026, 10, 26), utc(2026, 10, 26, 8)),
        ("America/New_York", date(2026, 3, 7), utc(2026, 3, 7, 14)),
        ("America/New_York", date(2026, 3, 9), utc(2026, 3, 9, 13)),
        ("America/New_York", date(2026, 10, 31), utc(2026, 10, 31, 13)),
        ("America/New_York", date(2026, 11, 2), utc(2026, 11, 2, 14)),
    ],
)
def test_nine_local_on_each_side_of_a_dst_change(zone_name: str, day: date, expected: datetime) -> None:
    send = LocalSend(day, time(9), decided_at=utc(2026, 1, 1))
    assert send.instant(zone_name) == expected


def test_the_next_day_across_a_dst_change_keeps_the_wall_clock() -> None:
    # scheduled for Saturday 09:00 in Paris once it had passed: Sunday 09:00 is summer time,
    # 23 hours later, not 24
    send = LocalSend(date(2026, 3, 28), time(9), decided_at=utc(2026, 3, 28, 10))
    assert send.instant(PARIS) == utc(2026, 3, 29, 7)
    assert send.instant(PARIS) - send.on_the_day(PARIS) == timedelta(hours=23)
    send = LocalSend(date(2026, 10, 31), time(9), decided_at=utc(2026, 10, 31, 14))
    assert send.instant("America/New_York") == utc(2026, 11, 1, 14)


def test_a_local_time_that_does_not_exist_follows_pep_495() -> None:
    send = LocalSend(date(2026, 3, 29), time(2, 30), decided_at=utc(2026, 3, 1))
    assert send.instant(PARIS) == utc(2026, 3, 29, 1, 30)


def test_a_local_send_survives_its_json() -> None:
    text = NINE_ON_MONDAY.to_json()
    assert text == '{"date": "2026-06-15", "time": "09:00", "decidedAt": "2026-06-14T12:00:00+00:00"}'
    back = LocalSend.from_json(text)
    assert back == NINE_ON_MONDAY and back.decided_at.tzinfo is not None
    assert NINE_ON_MONDAY.describe() == "2026-06-15 09:00 in each recipient's time zone"


# --- DeliveryPlan

TOKYO, NEW_YORK = "Asia/Tokyo", "America/New_York"


def test_no_constraints_release_at_once() -> None:
    plan = DeliveryPlan()
    assert not plan.constrained and not plan.by_recipient_zone
    assert plan.release(PARIS, utc(2026, 6, 15, 3)) is None
    assert plan.release(None, utc(2026, 6, 15, 3)) is None
    assert plan.recheck_at(PARIS, utc(2026, 6, 15, 3)) is None


def test_a_local_time_ahead_waits_for_it() -> None:
    plan = DeliveryPlan(local_send=NINE_ON_MONDAY)
    now = utc(2026, 6, 15, 5)
    assert plan.release(PARIS, now) == (utc(2026, 6, 15, 7), WaitReason.LOCAL_TIME)
    assert plan.release(NEW_YORK, now) == (utc(2026, 6, 15, 13), WaitReason.LOCAL_TIME)
    assert plan.release(TOKYO, now) is None  # 09:00 in Tokyo was 00:00 UTC
    assert plan.recheck_at(PARIS, now) is None  # no window: once released, always released


def test_a_local_time_reached_releases_at_once() -> None:
    plan = DeliveryPlan(local_send=NINE_ON_MONDAY)
    assert plan.release(PARIS, utc(2026, 6, 15, 7)) is None
    assert plan.release(PARIS, utc(2026, 6, 15, 20)) is None


def test_a_local_time_passed_inside_an_open_window_releases_and_rechecks_at_the_close() -> None:
    plan = DeliveryPlan(local_send=NINE_ON_MONDAY, window=OFFICE)
    now = utc(2026, 6, 15, 8)  # 10:00 in Paris
    assert plan.release(PARIS, now) is None
    assert plan.recheck_at(PARIS, now) == local(PARIS, 2026, 6, 15, 17)


def test_a_closed_window_waits_for_its_opening() -> None:
    plan = DeliveryPlan(window=OFFICE)
    now = local(PARIS, 2026, 6, 19, 21)  # Friday evening
    assert plan.release(PARIS, now) == (local(PARIS, 2026, 6, 22, 9), WaitReason.WINDOW)
    assert plan.recheck_at(PARIS, now) is None


def test_a_local_time_passed_outside_the_window_waits_for_the_window() -> None:
    plan = DeliveryPlan(local_send=NINE_ON_MONDAY, window=OFFICE)
    now = local(PARIS, 2026, 6, 15, 18)
    assert plan.release(PARIS, now) == (local(PARIS, 2026, 6, 16, 9), WaitReason.WINDOW)


def test_a_local_time_outside_the_window_is_released_at_its_next_opening() -> None:
    seven = LocalSend(MONDAY, time(7), decided_at=utc(2026, 6, 14, 12))
    plan = DeliveryPlan(local_send=seven, window=OFFICE)
    assert plan.release(PARIS, utc(2026, 6, 15, 3)) == (local(PARIS, 2026, 6, 15, 9), WaitReason.LOCAL_TIME)
    # a Saturday send with a weekday window: Monday's opening, still waiting for its local time
    saturday = LocalSend(date(2026, 6, 20), time(10), decided_at=utc(2026, 6, 14, 12))
    plan = DeliveryPlan(local_send=saturday, window=OFFICE)
    assert plan.release(TOKYO, utc(2026, 6, 19, 12)) == (local(TOKYO, 2026, 6, 22, 9), WaitReason.LOCAL_TIME)


def test_the_default_zone_places_recipients_without_one() -> None:
    plan = DeliveryPlan(local_send=NINE_ON_MONDAY, window=OFFICE, default_zone=TOKYO)
    now = utc(2026, 6, 14, 20)
    assert plan.release(None, now) == plan.release(TOKYO, now) == (utc(2026, 6, 15, 0), WaitReason.LOCAL_TIME)
    assert plan.release(PARIS, now) == (utc(2026, 6, 15, 7), WaitReason.LOCAL_TIME)
    assert plan.recheck_at(None, utc(2026, 6, 15, 1)) == local(TOKYO, 2026, 6, 15, 17)
    # without a default zone, UTC
    utc_plan = DeliveryPlan(local_send=NINE_ON_MONDAY)
    assert utc_plan.release(None, now) == (utc(2026, 6, 15, 9), WaitReason.LOCAL_TIME)


def test_a_fixed_zone_window_ignores_the_recipients_zone() -> None:
    fixed = window(WEEKDAYS_ONLY, "09:00", "17:00", PARIS)
    plan = DeliveryPlan(window=fixed, default_zone=TOKYO)
    now = utc(2026, 6, 15, 5)  # 07:00 in Paris, 14:00 in Tokyo, 01:00 in New York
    expected = (local(PARIS, 2026, 6, 15, 9), WaitReason.WINDOW)
    assert plan.release(TOKYO, now) == plan.release(NEW_YORK, now) == plan.release(None, now) == expected
    assert plan.recheck_at(NEW_YORK, utc(2026, 6, 15, 8)) == local(PARIS, 2026, 6, 15, 17)
    # in each recipient's zone instead, Tokyo is open and New York is not
    plan = DeliveryPlan(window=OFFICE)
    assert plan.release(TOKYO, now) is None
    assert plan.release(NEW_YORK, now) == (local(NEW_YORK, 2026, 6, 15, 9), WaitReason.WINDOW)


def test_a_local_time_in_the_recipients_zone_and_a_window_in_a_fixed_one() -> None:
    # 09:00 in New York is 15:00 in Paris: inside a Paris 09:00-17:00 window
    plan = DeliveryPlan(local_send=NINE_ON_MONDAY, window=window(WEEKDAYS_ONLY, "09:00", "17:00", PARIS))
    assert plan.release(NEW_YORK, utc(2026, 6, 15, 5)) == (utc(2026, 6, 15, 13), WaitReason.LOCAL_TIME)
    # 09:00 in Los Angeles is 18:00 in Paris: closed, the next opening is Tuesday 09:00 in Paris
    assert plan.release("America/Los_Angeles", utc(2026, 6, 15, 5)) == (
        local(PARIS, 2026, 6, 16, 9),
        WaitReason.LOCAL_TIME,
    )


@pytest.mark.parametrize(("zone_name", "before", "before_h", "after", "after_h"), DST_OPENINGS)
def test_a_plan_releases_at_nine_local_across_dst_changes(
    zone_name: str, before: date, before_h: int, after: date, after_h: int
) -> None:
    w = window(EVERY_DAY, "09:00", "17:00")
    for day, hour in ((before, before_h), (after, after_h)):
        expected = datetime.combine(day, time(hour), UTC)
        send = LocalSend(day, time(9), decided_at=utc(2026, 1, 1))
        midnight = datetime.combine(day, time(0), zone(zone_name))
        assert DeliveryPlan(local_send=send).release(zone_name, midnight) == (expected, WaitReason.LOCAL_TIME)
        assert DeliveryPlan(window=w).release(zone_name, midnight) == (expected, WaitReason.WINDOW)
        assert DeliveryPlan(local_send=send, window=w).release(zone_name, expected) is None


def test_which_plans_release_recipients_of_different_zones_at_different_times() -> None:
    fixed = window(WEEKDAYS_ONLY, "09:00", "17:00", PARIS)
    assert DeliveryPlan(local_send=NINE_ON_MONDAY).by_recipient_zone
    assert DeliveryPlan(window=OFFICE).by_recipient_zone
    assert not DeliveryPlan(window=fixed).by_recipient_zone
    assert DeliveryPlan(local_send=NINE_ON_MONDAY, window=fixed).by_recipient_zone
    assert not DeliveryPlan(default_zone=PARIS).by_recipient_zone
    assert DeliveryPlan(window=fixed).constrained and DeliveryPlan(local_send=NINE_ON_MONDAY).constrained
    assert not DeliveryPlan(default_zone=PARIS).constrained


def test_a_plan_is_read_from_the_campaigns_stored_columns() -> None:
    fixed = window(WEEKDAYS_ONLY, "09:00", "17:00", PARIS)
    plan = DeliveryPlan.of(NINE_ON_MONDAY.to_json(), fixed.to_json(), TOKYO)
    assert plan == DeliveryPlan(NINE_ON_MONDAY, fixed, TOKYO)
    assert DeliveryPlan.of(None, OFFICE.to_json(), None) == DeliveryPlan(window=OFFICE)
    assert DeliveryPlan.of(NINE_ON_MONDAY.to_json(), None, None) == DeliveryPlan(local_send=NINE_ON_MONDAY)
    assert DeliveryPlan.of(None, None, None) == DeliveryPlan()
    assert not DeliveryPlan.of("", "", PARIS).constrained
