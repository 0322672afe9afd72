"""When a campaign's messages may go out, over the database: the zones of its
recipients, putting a zone's messages to wait (`hold`), what waits and why, and the
hour-by-hour plan of what is still to go (domain/delivery.py decides; this reads and
writes). The business clock (runtime/clock.py) is the time of every decision here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from domain.delivery import DeliveryPlan
from domain.sending import Lease
from domain.waiting import WaitGroup, WaitReason
from models import Campaign
from runtime import clock
from services import db


def plan_of(campaign: Campaign) -> DeliveryPlan:
    """The campaign's delivery plan, from its stored columns."""
    return DeliveryPlan.of(campaign.local_send, campaign.send_window, campaign.time_zone)


async def zones(conn: BaseDBAsyncClient, campaign_id: int) -> list[str | None]:
    """The recipient zones (None: unknown) of the campaign's PENDING messages, sorted."""
    rows = await db.fetch(
        conn, "SELECT DISTINCT time_zone FROM message WHERE campaign_id = ? AND status = 'PENDING'", [campaign_id]
    )
    return sorted((r["time_zone"] for r in rows), key=lambda z: z or "")


async def hold(
    lease: Lease, holds: Mapping[str | None, tuple[datetime, WaitReason]], by_zone: bool, now: datetime
) -> int:
    """SendingStore.hold: one conditional UPDATE per zone, only while the lease is held
    (its owner and fence, unexpired by the real clock `now`)."""
    c = lease.campaign
    held = 0
    for zone_name, (until, reason) in sorted(holds.items(), key=lambda h: h[0] or ""):
        where_zone = ""
        params: list[object] = [until, reason.value, c.id, until]
        if by_zone:
            where_zone = " AND time_zone = ?" if zone_name is not None else " AND time_zone IS NULL"
            if zone_name is not None:
                params.append(zone_name)
        held += await db.execute(
            db.client(),
            "UPDATE message SET not_before = ?, wait_reason = ? WHERE campaign_id = ? AND status = 'PENDING' "
            f"AND (not_before IS NULL OR not_before < ?){where_zone} "
            "AND EXISTS (SELECT 1 FROM campaign WHERE id = ? AND status = 'PROCESSING' AND lease_owner = ? "
            "AND lease_fence = ? AND lease_expires_at > ?)",
            [*params, c.id, lease.owner, lease.fence, now],
        )
    return held


async def wait_groups(conn: BaseDBAsyncClient, campaign_id: int, now: datetime) -> list[WaitGroup]:
    """The campaign's PENDING messages that wait at `now`, by reason and zone."""
    rows = await db.fetch(
        conn,
        "SELECT wait_reason, time_zone, COUNT(*) AS n, MIN(not_before) AS first FROM message "
        "WHERE campaign_id = ? AND status = 'PENDING' AND not_before > ? GROUP BY wait_reason, time_zone",
        [campaign_id, now],
    )
    return sorted(
        (
            WaitGroup(
                WaitReason(r["wait_reason"] or WaitReason.MARKETING_LIMIT),
                r["time_zone"],
                int(r["n"]),
                db.timestamp(r["first"]) or now,
            )
            for r in rows
        ),
        key=lambda g: (g.until, g.reason, g.time_zone or ""),
    )


@dataclass(frozen=True, slots=True)
class PlannedHour:
    """Messages still to go whose release falls in the hour starting at `at` (UTC)."""

    at: datetime
    count: int


def _hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


async def send_plan(campaign: Campaign, now: datetime) -> list[PlannedHour]:
    """Hour by hour, how many of the campaign's PENDING messages become due: those that
    wait at their `not_before`; the others when the campaign's plan releases their zone
    (not before its scheduled start). The send rate spreads each hour's count further."""
    if campaign.status.value not in ("SCHEDULED", "QUEUED", "PROCESSING", "PAUSED"):
        return []
    conn = db.client()
    plan = plan_of(campaign)
    start = max(now, campaign.scheduled_at) if campaign.scheduled_at and campaign.status.value == "SCHEDULED" else now
    hours: Counter[datetime] = Counter()
    rows = await db.fetch(
        conn,
        "SELECT time_zone, COUNT(*) AS n FROM message WHERE campaign_id = ? AND status = 'PENDING' "
        "AND (not_before IS NULL OR not_before <= ?) GROUP BY time_zone",
        [campaign.id, now],
    )
    for r in rows:
        released = plan.release(r["time_zone"], start)
        hours[_hour(released[0] if released else start)] += int(r["n"])
    for group in await wait_groups(conn, campaign.id, now):
        hours[_hour(group.until)] += group.count
    return [PlannedHour(at, n) for at, n in sorted(hours.items())]


async def waiting_now(campaign_id: int) -> list[WaitGroup]:
    """wait_groups at the business clock's now."""
    return await wait_groups(db.client(), campaign_id, clock.now())


async def send_plan_now(campaign_id: int) -> list[PlannedHour]:
    """send_plan at the business clock's now; empty for a campaign that is gone."""
    found = await Campaign.get_or_none(id=campaign_id)
    return await send_plan(found, clock.now()) if found is not None else []
