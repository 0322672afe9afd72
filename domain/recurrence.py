"""Recurring schedules: a cron expression read in an IANA time zone, from a start, until
an end or a number of runs. Each occurrence becomes a campaign of its own, copied from
the model campaign (services/recurring.py); the schedule's status table is
domain/lifecycle.SCHEDULE_TABLE.

Occurrences are wall-clock times in the schedule's zone: croniter walks the zone's
local (naive) times, and zoneinfo places each one (PEP 495, as domain/delivery.py reads
a wall-clock time), so a 09:00 daily schedule stays at 09:00 local across daylight-saving
changes. On a spring-forward day a time that does not exist (02:30 in Europe/Paris on
the last Sunday of March) is read with the offset before the change, 03:30 summer time,
and runs once; on a fall-back day a time that occurs twice (02:30 on the last Sunday of
October) runs once, at its first occurrence. (croniter on aware datetimes would run it
twice, an hour apart, and put the spring one at 03:00.) Two slots that land on the same
instant (an hourly schedule around the spring gap) are one occurrence.

At most one occurrence an hour: the minute field holds one value, so a slip such as
`* 9 * * *` (every minute from 09:00 to 09:59, sixty campaigns) is refused.

Pure: no I/O; the caller gives `now` (runtime/clock.now()).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import CroniterBadDateError, croniter

from domain.campaign_input import MAX_NAME
from domain.errors import DomainError, ValidationFailed, collect
from domain.lifecycle import ScheduleAction, ScheduleStatus, schedule_transition
from domain.timezones import is_zone, zone

#: the fields of a cron expression, in order
CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
MAX_CRON = 120
#: nextOccurrences(count) returns at most this many
MAX_NEXT_OCCURRENCES = 50
#: a wall-clock time moves by at most this much around a zone's offset changes (DST is
#: one hour nearly everywhere; two in Antarctica/Troll): how far before a local time the
#: walk starts so that no slot after an instant is missed
_SHIFT = timedelta(hours=3)
#: croniter's own extensions that make an expression mean something else each time it
#: is read (R: random, H: hashed): a schedule must name fixed times
_UNSTABLE = ("R", "H")
_EPSILON = timedelta(microseconds=1)
#: a missed-slot walk longer than this jumps ahead (a worker down for months)
_LONG_OUTAGE = timedelta(days=8)


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A validated schedule: `cron` normalised (fields joined by one space), instants in UTC."""

    cron: str
    time_zone: str
    starts_at: datetime
    ends_at: datetime | None = None
    max_runs: int | None = None


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What one run of a due schedule does, decided at `now`."""

    #: the slot the occurrence stands for: the latest due slot (missed ones collapse into it)
    occurrence_at: datetime
    #: due slots before it that were missed (the service was down) and are not run;
    #: None after an outage too long to count them
    skipped: int | None
    #: the next slot after `now`; None when the schedule ends with this run
    next_run_at: datetime | None
    status: ScheduleStatus


def parse_cron(text: str) -> str:
    """The expression normalised, or ValidationFailed naming `cron`."""
    parts = text.split()
    if len(parts) != len(CRON_FIELDS):
        raise ValidationFailed(
            f"cron must have 5 fields ({', '.join(CRON_FIELDS)}), e.g. '0 9 * * 1' for Mondays at 09:00; "
            f"{text.strip()!r} has {len(parts)}.",
            ("cron",),
        )
    cron = " ".join(parts)
    atoms = (atom.upper() for part in parts for atom in re.split(r"[,/-]", part))
    if len(cron) > MAX_CRON or any(atom.startswith(_UNSTABLE) for atom in atoms):
        raise ValidationFailed(f"cron {cron!r} is not a valid cron expression.", ("cron",))
    if not croniter.is_valid(cron):
        raise ValidationFailed(
            f"cron {cron!r} is not a valid cron expression (fields: {', '.join(CRON_FIELDS)}).", ("cron",)
        )
    minutes = croniter(cron).expanded[0]
    if len(minutes) != 1 or minutes[0] == "*":
        raise ValidationFailed(
            f"cron {cron!r} would run several times an hour; a recurring campaign runs at most once an hour: "
            f"give one minute (e.g. '0 {parts[1]} {' '.join(parts[2:])}').",
            ("cron",),
        )
    return cron


def check_zone(name: str) -> str:
    """The IANA zone name, or ValidationFailed naming `timeZone`."""
    cleaned = name.strip()
    if not is_zone(cleaned):
        raise ValidationFailed(
            f"timeZone {name!r} is not an IANA time zone (e.g. Europe/Paris, America/New_York, UTC).",
            ("timeZone",),
        )
    return cleaned


def validate(
    cron: str,
    time_zone: str,
    starts_at: datetime | None,
    ends_at: datetime | None,
    max_runs: int | None,
    now: datetime,
) -> tuple[Recurrence, datetime]:
    """A new schedule and its first occurrence; every bad field at once (ValidationFailed
    naming each: cron, timeZone, endsAt, maxRuns). `starts_at` None: from now."""
    errors: list[DomainError] = []
    parsed_cron = parsed_zone = None
    try:
        parsed_cron = parse_cron(cron)
    except ValidationFailed as error:
        errors.append(error)
    try:
        parsed_zone = check_zone(time_zone)
    except ValidationFailed as error:
        errors.append(error)
    start = (starts_at or now).astimezone(UTC)
    end = ends_at.astimezone(UTC) if ends_at is not None else None
    if end is not None and end <= start:
        errors.append(
            ValidationFailed(f"endsAt ({end.isoformat()}) must be after startsAt ({start.isoformat()}).", ("endsAt",))
        )
    elif end is not None and end <= now:
        errors.append(ValidationFailed(f"endsAt ({end.isoformat()}) has passed already.", ("endsAt",)))
    if max_runs is not None and max_runs < 1:
        errors.append(ValidationFailed("maxRuns must be at least 1 (or null for no limit).", ("maxRuns",)))
    collect(errors)
    assert parsed_cron is not None and parsed_zone is not None
    recurrence = Recurrence(parsed_cron, parsed_zone, start, end, max_runs)
    first = next_after(recurrence, now)
    if first is None:
        until = f"before endsAt ({end.isoformat()})" if end is not None else "in the next years"
        raise ValidationFailed(
            f"cron {parsed_cron!r} has no occurrence from startsAt ({start.isoformat()}) {until} in {parsed_zone}.",
            ("endsAt",) if end is not None else ("cron",),
        )
    return recurrence, first


def _slots(cron: str, time_zone: str, after: datetime) -> Iterator[datetime]:
    """The schedule's instants (UTC) strictly after `after`, in order, each once."""
    tz = zone(time_zone)
    local = after.astimezone(tz).replace(tzinfo=None) - _SHIFT
    walk = croniter(cron, local)
    last = after
    while True:
        try:
            wall: datetime = walk.get_next(datetime)
        except CroniterBadDateError:  # no match within croniter's horizon (50 years): e.g. 31 February
            return
        # PEP 495: fold=0 is the first of a repeated time and, for a time in a spring gap,
        # the reading with the offset before the change
        instant = wall.replace(tzinfo=tz).astimezone(UTC)
        if instant > last:
            last = instant
            yield instant


def next_after(recurrence: Recurrence, after: datetime) -> datetime | None:
    """The first occurrence strictly after `after` (and not before the start), or None
    when there is none before `ends_at`."""
    found = next(_slots(recurrence.cron, recurrence.time_zone, max(after, recurrence.starts_at - _EPSILON)), None)
    if found is None or (recurrence.ends_at is not None and found > recurrence.ends_at):
        return None
    return found


def upcoming(recurrence: Recurrence, after: datetime, count: int, runs_left: int | None = None) -> list[datetime]:
    """The next `count` occurrences after `after` (at most MAX_NEXT_OCCURRENCES, and at
    most `runs_left`), within the schedule's start and end."""
    wanted = max(0, min(count, MAX_NEXT_OCCURRENCES, runs_left if runs_left is not None else count))
    found: list[datetime] = []
    for at in _slots(recurrence.cron, recurrence.time_zone, max(after, recurrence.starts_at - _EPSILON)):
        if len(found) >= wanted or (recurrence.ends_at is not None and at > recurrence.ends_at):
            break
        found.append(at)
    return found


def plan_run(recurrence: Recurrence, runs: int, due_at: datetime, now: datetime) -> RunPlan:
    """The run of a schedule whose next slot `due_at` is due (<= `now`), having run
    `runs` times: ONE occurrence for the latest slot due by now (slots missed while the
    service was down are not run one by one), the next slot after now, and whether the
    schedule ends (maxRuns reached, or no slot left before endsAt: END)."""
    bound = min(now, recurrence.ends_at) if recurrence.ends_at is not None else now
    walk_from: datetime = due_at - _EPSILON  # due_at is a slot: the walk starts with it
    counted = True
    if bound - due_at > _LONG_OUTAGE:
        # down for long: the latest due slot lies in the last days (or the schedule is
        # sparse and its walk short); the slots before them are not counted one by one
        recent = next(_slots(recurrence.cron, recurrence.time_zone, bound - _LONG_OUTAGE), None)
        if recent is not None and recent <= bound:
            walk_from, counted = recent - _EPSILON, False
    latest, walked = due_at, 0
    for at in _slots(recurrence.cron, recurrence.time_zone, walk_from):
        if at > bound:
            break
        latest, walked = at, walked + 1
    following = next_after(recurrence, now)
    if following is None or (recurrence.max_runs is not None and runs + 1 >= recurrence.max_runs):
        ended = schedule_transition(ScheduleStatus.ACTIVE, ScheduleAction.END)
        return RunPlan(latest, max(0, walked - 1) if counted else None, None, ended)
    return RunPlan(latest, max(0, walked - 1) if counted else None, following, ScheduleStatus.ACTIVE)


def occurrence_name(model_name: str, at: datetime, time_zone: str) -> str:
    """The occurrence's campaign name: the model's, dated in the schedule's zone
    ("Weekly news — 2026-12-07 09:00 Europe/Paris"), the model's part cut to fit MAX_NAME."""
    suffix = f" — {at.astimezone(zone(time_zone)):%Y-%m-%d %H:%M} {time_zone}"
    return f"{model_name[: max(0, MAX_NAME - len(suffix))].rstrip()}{suffix}"
