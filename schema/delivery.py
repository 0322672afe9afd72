"""GraphQL types of when a campaign's messages may go out: its send window, a
local-time schedule, what waits and why, and the hour-by-hour plan (domain/delivery.py,
domain/waiting.py, services/delivery.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from domain import delivery as dom
from domain.waiting import WaitGroup, WaitReason
from services.delivery import PlannedHour

Weekday = strawberry.enum(dom.Weekday, name="Weekday", description="Days of the week, Monday first.")
WaitReasonEnum = strawberry.enum(
    WaitReason,
    name="WaitReason",
    description=(
        "Why a message waits: MARKETING_LIMIT (WhatsApp's per-user marketing limit, 131049), LOCAL_TIME (its "
        "recipient's local send time is ahead), WINDOW (outside the send window), DAILY_LIMIT (the sender's "
        "daily messaging limit)."
    ),
)


@strawberry.input(
    description=(
        "Messages start only on these days from start to end (HH:MM, 24-hour), in timeZone or, when it is "
        "null, in each recipient's own zone. An end before start is an overnight window (22:00 to 06:00)."
    )
)
class SendWindowInput:
    days: list[Weekday]  # type: ignore[valid-type]
    start: str
    end: str
    time_zone: str | None = None

    def given(self) -> dict[str, Any]:
        """As domain/campaign_input.validate_fields takes it."""
        return {
            "days": [str(d) for d in self.days],
            "start": self.start,
            "end": self.end,
            "timeZone": self.time_zone,
        }


@strawberry.type(description="When a campaign's messages may start (quiet hours outside it).")
class SendWindow:
    days: list[Weekday]  # type: ignore[valid-type]
    start: str
    end: str
    time_zone: str | None = strawberry.field(description="null: each recipient's own time zone.")
    description: str

    @classmethod
    def of(cls, stored: str | None) -> SendWindow | None:
        if not stored:
            return None
        w = dom.SendWindow.from_json(stored)
        return cls(
            days=[d for d in dom.WEEKDAYS if d in w.days],
            start=f"{w.start:%H:%M}",
            end=f"{w.end:%H:%M}",
            time_zone=w.time_zone,
            description=w.describe(),
        )


@strawberry.type(description="A schedule at a wall-clock time in each recipient's time zone.")
class LocalSendTime:
    date: str = strawberry.field(description="YYYY-MM-DD")
    time: str = strawberry.field(description="HH:MM in each recipient's time zone")
    decided_at: datetime = strawberry.field(
        description="When it was scheduled: zones where the time had passed then get it the next day."
    )

    @classmethod
    def of(cls, stored: str | None) -> LocalSendTime | None:
        if not stored:
            return None
        local = dom.LocalSend.from_json(stored)
        return cls(date=local.day.isoformat(), time=f"{local.time:%H:%M}", decided_at=local.decided_at)


@strawberry.type(description="Messages that wait for one reason in one time zone.")
class WaitingGroup:
    reason: WaitReasonEnum  # type: ignore[valid-type]
    time_zone: str | None = strawberry.field(description="null: unknown (the campaign's time zone applies).")
    count: int
    until: datetime = strawberry.field(description="When the first of them may go out.")

    @classmethod
    def of(cls, g: WaitGroup) -> WaitingGroup:
        return cls(reason=g.reason, time_zone=g.time_zone, count=g.count, until=g.until)


@strawberry.type(description="How many messages still to go become due in the hour starting at `at` (UTC).")
class PlannedSendHour:
    at: datetime
    count: int

    @classmethod
    def of(cls, p: PlannedHour) -> PlannedSendHour:
        return cls(at=p.at, count=p.count)
