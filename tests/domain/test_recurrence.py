"""Recurrence (domain/recurrence.py): cron and zone validation, occurrences across both
daylight-saving changes of Europe/Paris and America/New_York, missed slots, names."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain import recurrence
from domain.campaign_input import MAX_NAME
from domain.errors import InvalidInput, ValidationFailed
from domain.lifecycle import ScheduleStatus
from domain.recurrence import Recurrence

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
#: 2026: Europe/Paris springs forward on 29 March and falls back on 25 October;
#: America/New_York on 8 March and 1 November
NOW = datetime(2026, 1, 5, tzinfo=UTC)


def local(times: list[datetime], tz: ZoneInfo) -> list[str]:
    return [t.astimezone(tz).strftime("%Y-%m-%d %H:%M %z") for t in times]


def daily(cron: str, zone: str) -> Recurrence:
    return recurrence.validate(cron, zone, None, None, None, NOW)[0]


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "cron",
    ["0 9 * *", "0 9 * * * *", "", "hello", "0 25 * * *", "61 9 * * *", "0 9 * * 8", "R 9 * * *", "H 9 * * *"],
)
def test_an_invalid_cron_expression_is_refused_naming_the_field(cron: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        recurrence.validate(cron, "UTC", None, None, None, NOW)
    assert refused.value.field == ("cron",)
    assert "cron" in refused.value.message


@pytest.mark.parametrize("cron", ["* 9 * * *", "*/15 9 * * *", "0,30 9 * * *", "0-5 9 * * 1"])
def test_more_than_one_occurrence_an_hour_is_refused(cron: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        recurrence.parse_cron(cron)
    assert refused.value.field == ("cron",) and "at most once an hour" in refused.value.message


def test_a_cron_expression_is_normalised_and_names_are_accepted() -> None:
    assert recurrence.parse_cron("  0   9 * *  MON-FRI ") == "0 9 * * MON-FRI"
    assert recurrence.parse_cron("30 8 1 JAN,JUL *") == "30 8 1 JAN,JUL *"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "CEST", "+02:00", "", "localtime", "../etc/passwd"])
def test_an_invalid_zone_is_refused_naming_the_field(zone: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        recurrence.validate("0 9 * * *", zone, None, None, None, NOW)
    assert refused.value.field == ("timeZone",)


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(InvalidInput) as refused:
        recurrence.validate("0 9 * *", "Nowhere/City", NOW + timedelta(days=2), NOW + timedelta(days=1), 0, NOW)
    assert [e.field for e in refused.value.errors] == [("cron",), ("timeZone",), ("endsAt",), ("maxRuns",)]


def test_a_schedule_without_an_occurrence_between_start_and_end_is_refused() -> None:
    start = datetime(2026, 1, 6, 10, tzinfo=UTC)  # a Tuesday
    with pytest.raises(ValidationFailed) as refused:  # Mondays only, and it ends on Sunday
        recurrence.validate("0 9 * * 1", "UTC", start, start + timedelta(days=5), None, NOW)
    assert refused.value.field == ("endsAt",) and "no occurrence" in refused.value.message
    with pytest.raises(ValidationFailed) as never:  # 31 February
        recurrence.validate("0 9 31 2 *", "UTC", None, None, None, NOW)
    assert never.value.field == ("cron",)
    with pytest.raises(ValidationFailed) as passed:
        recurrence.validate("0 9 * * *", "UTC", NOW - timedelta(days=9), NOW - timedelta(days=1), None, NOW)
    assert passed.value.field == ("endsAt",)


def test_the_first_occurrence_is_from_the_start_or_from_now() -> None:
    rec, first = recurrence.validate("0 9 * * *", "Europe/Paris", None, None, None, NOW)
    assert first == datetime(2026, 1, 5, 8, tzinfo=UTC)  # 09:00 in Paris (UTC+1) today
    later = datetime(2026, 2, 1, 12, tzinfo=UTC)
    _, first = recurrence.validate("0 9 * * *", "Europe/Paris", later, None, None, NOW)
    assert first == datetime(2026, 2, 2, 8, tzinfo=UTC)
    _, exactly = recurrence.validate("0 9 * * *", "UTC", datetime(2026, 2, 2, 9, tzinfo=UTC), None, None, NOW)
    assert exactly == datetime(2026, 2, 2, 9, tzinfo=UTC)  # a start on a slot includes it
    assert rec.starts_at == NOW and rec.cron == "0 9 * * *"


# --------------------------------------------------------------- daylight saving


def test_nine_oclock_daily_stays_at_nine_local_across_both_changes_in_paris() -> None:
    rec = daily("0 9 * * *", "Europe/Paris")
    spring = recurrence.upcoming(rec, datetime(2026, 3, 27, 12, tzinfo=UTC), 4)
    assert local(spring, PARIS) == [
        "2026-03-28 09:00 +0100",
        "2026-03-29 09:00 +0200",
        "2026-03-30 09:00 +0200",
        "2026-03-31 09:00 +0200",
    ]
    autumn = recurrence.upcoming(rec, datetime(2026, 10, 23, 12, tzinfo=UTC), 3)
    assert local(autumn, PARIS) == ["2026-10-24 09:00 +0200", "2026-10-25 09:00 +0100", "2026-10-26 09:00 +0100"]
    assert [b - a for a, b in itertools.pairwise(autumn)] == [timedelta(hours=25), timedelta(hours=24)]


def test_nine_oclock_daily_stays_at_nine_local_across_both_changes_in_new_york() -> None:
    rec = daily("0 9 * * *", "America/New_York")
    spring = recurrence.upcoming(rec, datetime(2026, 3, 6, 18, tzinfo=UTC), 3)
    assert local(spring, NEW_YORK) == ["2026-03-07 09:00 -0500", "2026-03-08 09:00 -0400", "2026-03-09 09:00 -0400"]
    autumn = recurrence.upcoming(rec, datetime(2026, 10, 30, 18, tzinfo=UTC), 3)
    assert local(autumn, NEW_YORK) == ["2026-10-31 09:00 -0400", "2026-11-01 09:00 -0500", "2026-11-02 09:00 -0500"]


@pytest.mark.parametrize(
    ("zone", "tz", "cron", "after", "expected"),
    [
        # the spring-forward day has no 02:30: it runs once, at 03:30 summer time (PEP 495,
        # the reading with the offset before the change, as domain/delivery.py does)
        (
            "Europe/Paris",
            PARIS,
            "30 2 * * *",
            datetime(2026, 3, 27, 12, tzinfo=UTC),
            ["2026-03-28 02:30 +0100", "2026-03-29 03:30 +0200", "2026-03-30 02:30 +0200"],
        ),
        (
            "America/New_York",
            NEW_YORK,
            "30 2 * * *",
            datetime(2026, 3, 6, 18, tzinfo=UTC),
            ["2026-03-07 02:30 -0500", "2026-03-08 03:30 -0400", "2026-03-09 02:30 -0400"],
        ),
        # the fall-back day has 02:30 (01:30 in New York) twice: it runs once, the first time
        (
            "Europe/Paris",
            PARIS,
            "30 2 * * *",
            datetime(2026, 10, 23, 12, tzinfo=UTC),
            ["2026-10-24 02:30 +0200", "2026-10-25 02:30 +0200", "2026-10-26 02:30 +0100"],
        ),
        (
            "America/New_York",
            NEW_YORK,
            "30 1 * * *",
            datetime(2026, 10, 30, 18, tzinfo=UTC),
            ["2026-10-31 01:30 -0400", "2026-11-01 01:30 -0400", "2026-11-02 01:30 -0500"],
        ),
    ],
    ids=["paris-spring", "new-york-spring", "paris-autumn", "new-york-autumn"],
)
def test_a_time_the_change_skips_or_repeats_runs_once_that_day(
    zone: str, tz: ZoneInfo, cron: str, after: datetime, expected: list[str]
) -> None:
    assert local(recurrence.upcoming(daily(cron, zone), after, 3), tz) == expected


def test_hourly_slots_landing_on_one_instant_around_the_gap_are_one_occurrence() -> None:
    rec = daily("0 * * * *", "Europe/Paris")
    slots = recurrence.upcoming(rec, datetime(2026, 3, 28, 23, 30, tzinfo=UTC), 3)
    # 02:00 does not exist; read as 03:00 summer time, the same instant as 03:00: once
    assert local(slots, PARIS) == ["2026-03-29 01:00 +0100", "2026-03-29 03:00 +0200", "2026-03-29 04:00 +0200"]
    assert len(set(slots)) == len(slots)


# ----------------------------------------------------------------- upcoming, runs


def test_upcoming_stops_at_the_end_the_runs_left_and_the_cap() -> None:
    start = datetime(2026, 2, 1, tzinfo=UTC)
    rec, _ = recurrence.validate("0 9 * * *", "UTC", start, start + timedelta(days=3), None, NOW)
    assert len(recurrence.upcoming(rec, NOW, 10)) == 3  # 1, 2 and 3 February
    assert len(recurrence.upcoming(rec, NOW, 10, runs_left=2)) == 2
    assert len(recurrence.upcoming(daily("0 9 * * *", "UTC"), NOW, 500)) == recurrence.MAX_NEXT_OCCURRENCES
    assert recurrence.upcoming(daily("0 9 * * *", "UTC"), NOW, -1) == []


def test_a_due_run_makes_one_occurrence_and_moves_to_the_next_slot_after_now() -> None:
    rec, first = recurrence.validate("0 9 * * *", "Europe/Paris", None, None, None, NOW)
    on_time = recurrence.plan_run(rec, 0, first, first + timedelta(seconds=3))
    assert (on_time.occurrence_at, on_time.skipped) == (first, 0)
    assert on_time.next_run_at == first + timedelta(days=1) and on_time.status is ScheduleStatus.ACTIVE
    # stopped for two slots: ONE occurrence, for the latest, and the next is after now
    late = first + timedelta(days=2, hours=3)
    missed = recurrence.plan_run(rec, 0, first, late)
    assert (missed.occurrence_at, missed.skipped) == (first + timedelta(days=2), 2)
    assert missed.next_run_at == first + timedelta(days=3)
    # down for months: still one, the latest slot, its missed slots not counted one by one
    months = recurrence.plan_run(rec, 0, first, first + timedelta(days=90, hours=1))
    assert (local([months.occurrence_at], PARIS), months.skipped) == (["2026-04-05 09:00 +0200"], None)


def test_a_run_ends_the_schedule_at_max_runs_or_when_no_slot_is_left_before_the_end() -> None:
    rec, first = recurrence.validate("0 9 * * *", "UTC", None, None, 3, NOW)
    assert recurrence.plan_run(rec, 1, first, first).status is ScheduleStatus.ACTIVE
    last = recurrence.plan_run(rec, 2, first, first)
    assert (last.status, last.next_run_at) == (ScheduleStatus.ENDED, None)
    ends = NOW + timedelta(days=1, hours=12)  # after the slots of the 5th and 6th
    rec, first = recurrence.validate("0 9 * * *", "UTC", None, ends, None, NOW)
    assert recurrence.plan_run(rec, 0, first, first).next_run_at == first + timedelta(days=1)
    final = recurrence.plan_run(rec, 1, first + timedelta(days=1), first + timedelta(days=1))
    assert final.status is ScheduleStatus.ENDED
    # down past its end: the last slot before the end runs once, and it is over
    gone = recurrence.plan_run(rec, 0, first, ends + timedelta(days=5))
    assert (gone.occurrence_at, gone.status) == (first + timedelta(days=1), ScheduleStatus.ENDED)


# ------------------------------------------------------------------------- names


def test_an_occurrence_is_named_with_its_local_date_time_and_zone() -> None:
    at = datetime(2026, 12, 7, 8, tzinfo=UTC)
    assert (
        recurrence.occurrence_name("Weekly news", at, "Europe/Paris") == "Weekly news — 2026-12-07 09:00 Europe/Paris"
    )
    assert recurrence.occurrence_name("Digest", at, "America/New_York") == "Digest — 2026-12-07 03:00 America/New_York"


def test_a_long_model_name_is_cut_so_the_date_stays() -> None:
    name = recurrence.occurrence_name("x" * MAX_NAME, datetime(2026, 12, 7, 8, tzinfo=UTC), "Europe/Paris")
    assert len(name) == MAX_NAME and name.endswith(" — 2026-12-07 09:00 Europe/Paris")
