"""When a campaign's messages may start: at a wall-clock time in each recipient's zone
(`LocalSend`), and only inside a send window (`SendWindow`, quiet hours outside it).

Both resolve, per time zone, to one instant before which a message must not start
(`DeliveryPlan.release`); the run puts the messages of a zone that must wait to wait
(`message.not_before`, `wait_reason`), the same mechanism as every other wait
(domain/waiting.py), so a campaign whose remaining messages all wait holds no lease.

Wall-clock times follow PEP 495, as zoneinfo does: a time that does not exist on a
spring-forward day (02:30 in Europe/Paris on the last Sunday of March) is read with
the offset before the change (so 03:30 summer time); a time that occurs twice on a
fall-back day is its first occurrence.

Local-time sending: a zone where the time has already passed when the campaign is
scheduled gets it at the same time the next day; if it has passed everywhere the
schedule is refused (domain/lifecycle.check_launch), as Braze refuses it.

Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from domain.errors import ValidationFailed
from domain.timezones import is_zone, zone
from domain.waiting import WaitReason


class Weekday(StrEnum):
    """ISO order: Monday is day 1."""

    MON = "MON"
    TUE = "TUE"
    WED = "WED"
    THU = "THU"
    FRI = "FRI"
    SAT = "SAT"
    SUN = "SUN"


WEEKDAYS: tuple[Weekday, ...] = tuple(Weekday)


def _iso(day: Weekday) -> int:
    return WEEKDAYS.index(day) + 1


@dataclass(frozen=True, slots=True)
class SendWindow:
    """Messages start only from `start` to `end` on `days`, in `time_zone` (None: each
    recipient's own). An `end` before `start` is an overnight window (22:00 to 06:00
    opens on each of `days` and closes the next morning)."""

    days: frozenset[Weekday]
    start: time
    end: time
    time_zone: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "days": [d.value for d in WEEKDAYS if d in self.days],
                "start": self.start.strftime("%H:%M"),
                "end": self.end.strftime("%H:%M"),
                "timeZone": self.time_zone,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SendWindow:
        raw = json.loads(text)
        return cls(
            frozenset(Weekday(d) for d in raw["days"]),
            time.fromisoformat(raw["start"]),
            time.fromisoformat(raw["end"]),
            raw.get("timeZone"),
        )

    def describe(self) -> str:
        days = ", ".join(d.value for d in WEEKDAYS if d in self.days)
        where = self.time_zone or "each recipient's time zone"
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} ({where})"


_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def parse_clock(text: str | time, path: tuple[str, ...]) -> time:
    """A wall-clock time from user input, "HH:MM" (24-hour); ValidationFailed naming it."""
    if isinstance(text, time):
        return text
    found = _CLOCK.fullmatch(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise ValidationFailed(f"{path[-1]} is a time of day as HH:MM, 00:00 to 23:59 (got {text!r}).", path)
    return time(int(found[1]), int(found[2]))


def parse_day(text: str, path: tuple[str, ...]) -> date:
    """A calendar date from user input, "YYYY-MM-DD"; ValidationFailed naming it."""
    try:
        return date.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise ValidationFailed(f"{path[-1]} is a date as YYYY-MM-DD (got {text!r}).", path) from None


def parse_window(
    days: list[str],
    start: str | time,
    end: str | time,
    time_zone: str | None,
    path: tuple[str, ...] = ("sendWindow",),
) -> SendWindow:
    """A window from user input; ValidationFailed naming the field (under `path`) for one
    that never opens or names no real zone."""
    name = path[-1]
    start, end = parse_clock(start, (*path, "start")), parse_clock(end, (*path, "end"))
    try:
        chosen = frozenset(Weekday(d) for d in days)
    except ValueError:
        raise ValidationFailed(
            f"{name}.days takes {', '.join(WEEKDAYS)}; got {', '.join(map(str, days))}.", (*path, "days")
        ) from None
    if not chosen:
        raise ValidationFailed(f"{name}.days is empty: the window would never open.", (*path, "days"))
    for which, given in (("start", start), ("end", end)):
        if given.second or given.microsecond:
            raise ValidationFailed(f"{name}.{which} is a whole minute (HH:MM).", (*path, which))
    if start == end:
        raise ValidationFailed(
            f"{name}.end equals start: the window would never open (omit the window to send at any hour).",
            (*path, "end"),
        )
    if time_zone is not None:
        time_zone = time_zone.strip()
        if not is_zone(time_zone):
            raise ValidationFailed(
                f"{name}.timeZone {time_zone!r} is not an IANA time zone (for example Europe/Paris).",
                (*path, "timeZone"),
            )
    return SendWindow(chosen, start.replace(tzinfo=None), end.replace(tzinfo=None), time_zone)


def _at(day: date, t: time, zone_name: str | None) -> datetime:
    return datetime.combine(day, t, zone(zone_name)).astimezone(UTC)


def _periods(window: SendWindow, zone_name: str | None, around: datetime) -> list[tuple[datetime, datetime]]:
    """The window's open periods (UTC) from the day before `around` to a week after."""
    local_day = around.astimezone(zone(zone_name)).date()
    periods = []
    for k in range(-1, 9):
        day = local_day + timedelta(days=k)
        if WEEKDAYS[day.isoweekday() - 1] not in window.days:
            continue
        closes_on = day if window.end > window.start else day + timedelta(days=1)
        opens, closes = _at(day, window.start, zone_name), _at(closes_on, window.end, zone_name)
        if opens < closes:  # a window inside a spring-forward gap (02:30-03:00) does not open that day
            periods.append((opens, closes))
    return periods


def window_opening(window: SendWindow, zone_name: str | None, at: datetime) -> datetime | None:
    """None while the window is open at `at` in that zone; else when it next opens."""
    periods = _periods(window, zone_name, at)
    if any(opens <= at < closes for opens, closes in periods):
        return None
    return min(opens for opens, _ in periods if opens > at)


def window_closing(window: SendWindow, zone_name: str | None, at: datetime) -> datetime | None:
    """While open at `at`: when it closes (periods that touch count as one); else None."""
    periods = sorted(_periods(window, zone_name, at))
    end: datetime | None = None
    for opens, closes in periods:
        if end is None:
            if opens <= at < closes:
                end = closes
        elif opens <= end:
            end = max(end, closes)
    return end


@dataclass(frozen=True, slots=True)
class LocalSend:
    """Send at `time` on `day` in each recipient's zone; zones where that had passed at
    `decided_at` (when it was scheduled) get it the next day."""

    day: date
    time: time
    decided_at: datetime

    def to_json(self) -> str:
        return json.dumps(
            {
                "date": self.day.isoformat(),
                "time": self.time.strftime("%H:%M"),
                "decidedAt": self.decided_at.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> LocalSend:
        raw = json.loads(text)
        return cls(
            date.fromisoformat(raw["date"]), time.fromisoformat(raw["time"]), datetime.fromisoformat(raw["decidedAt"])
        )

    def on_the_day(self, zone_name: str | None) -> datetime:
        """The instant of the chosen date and time in that zone."""
        return _at(self.day, self.time, zone_name)

    def instant(self, zone_name: str | None) -> datetime:
        """When the zone's recipients get it: that day, or the next if it had passed."""
        first = self.on_the_day(zone_name)
        if first > self.decided_at:
            return first
        return _at(self.day + timedelta(days=1), self.time, zone_name)

    def describe(self) -> str:
        return f"{self.day.isoformat()} {self.time:%H:%M} in each recipient's time zone"


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    """What decides when a campaign's messages may start. `default_zone` is the zone
    of recipients whose own is unknown (and None means UTC)."""

    local_send: LocalSend | None = None
    window: SendWindow | None = None
    default_zone: str | None = None

    @property
    def constrained(self) -> bool:
        return self.local_send is not None or self.window is not None

    @property
    def by_recipient_zone(self) -> bool:
        """Whether recipients of different zones may be released at different times."""
        return self.local_send is not None or (self.window is not None and self.window.time_zone is None)

    def release(self, zone_name: str | None, now: datetime) -> tuple[datetime, WaitReason] | None:
        """None when a message of that zone (None: unknown) may start now; else the
        instant it may, and why it waits."""
        recipient_zone = zone_name or self.default_zone
        at, reason = now, None
        if self.local_send is not None:
            due = self.local_send.instant(recipient_zone)
            if due > now:
                at, reason = due, WaitReason.LOCAL_TIME
        if self.window is not None:
            window_zone = self.window.time_zone or recipient_zone
            opens = window_opening(self.window, window_zone, at)
            if opens is not None:
                at, reason = opens, reason or WaitReason.WINDOW
        return None if reason is None else (at, reason)

    def recheck_at(self, zone_name: str | None, now: datetime) -> datetime | None:
        """For a zone released now: when that may stop being true (its window closes)."""
        if self.window is None:
            return None
        return window_closing(self.window, self.window.time_zone or zone_name or self.default_zone, now)

    @classmethod
    def of(cls, local_send: str | None, window: str | None, default_zone: str | None) -> DeliveryPlan:
        """From the campaign's stored columns."""
        return cls(
            LocalSend.from_json(local_send) if local_send else None,
            SendWindow.from_json(window) if window else None,
            default_zone,
        )
