"""The webhook outbox: events recorded in the transaction of the change they tell, and
the dispatcher's claims on them.

Recording in the same transaction is what makes delivery at least once: a status
change that committed has its delivery rows, and one that rolled back has none. The
dispatcher (jobs/webhooks.py) then claims due rows with conditional UPDATEs; each claim
bumps `attempts`, and an outcome is written only by the claim that made that attempt
(the fencing token), so a dispatcher paused past its lock cannot overwrite a newer one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from domain import webhooks as wh
from domain.events import StatsPayload
from domain.ids import to_global_id
from domain.lifecycle import CampaignStatus
from domain.stats import STAT_FIELDS
from models import WebhookDelivery
from services import db


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def now_utc() -> datetime:
    return datetime.now(UTC)


async def _subscribed(conn: BaseDBAsyncClient, workspace_id: int) -> list[tuple[int, tuple[wh.EventType, ...]]]:
    rows = await db.fetch_rows(
        conn, "SELECT id, events FROM webhook_endpoint WHERE workspace_id = ? AND enabled = ?", [workspace_id, True]
    )
    return [(int(r["id"]), wh.loaded_events(str(r["events"]))) for r in rows]


@dataclass(frozen=True, slots=True)
class Change:
    """A status change as recorded in the campaign's history."""

    campaign_id: int
    workspace_id: int
    name: str
    from_status: CampaignStatus | None
    to_status: CampaignStatus
    action: str
    actor: str
    reason: str | None
    at: datetime


async def record_change(conn: BaseDBAsyncClient, change: Change) -> int:
    """In the change's transaction: a `campaign.status_changed` delivery for every
    enabled endpoint of the workspace that subscribes to it, and `campaign.completed`
    (with the numbers as they are in this transaction) when the change completes the
    campaign. Returns how many delivery rows were written."""
    endpoints = await _subscribed(conn, change.workspace_id)
    if not endpoints:
        return 0
    campaign = to_global_id("Campaign", change.campaign_id)
    workspace = to_global_id("Workspace", change.workspace_id)
    bodies: dict[wh.EventType, tuple[str, str]] = {}
    changed = wh.status_changed_data(
        campaign,
        change.name,
        change.from_status.value if change.from_status is not None else None,
        change.to_status.value,
        change.action,
        change.actor,
        change.reason,
        change.at,
    )
    event_id = new_event_id()
    bodies[wh.EventType.CAMPAIGN_STATUS_CHANGED] = (
        event_id,
        wh.event_body(event_id, wh.EventType.CAMPAIGN_STATUS_CHANGED, change.at, workspace, changed),
    )
    if change.to_status is CampaignStatus.COMPLETED and any(
        wh.EventType.CAMPAIGN_COMPLETED in events for _, events in endpoints
    ):
        numbers = await _stats(conn, change.campaign_id)
        event_id = new_event_id()
        done = wh.completed_data(campaign, change.name, change.at, numbers)
        bodies[wh.EventType.CAMPAIGN_COMPLETED] = (
            event_id,
            wh.event_body(event_id, wh.EventType.CAMPAIGN_COMPLETED, change.at, workspace, done),
        )
    rows = [
        _row(endpoint_id, kind, *bodies[kind], change.campaign_id, change.at)
        for endpoint_id, events in endpoints
        # status_changed first: a receiver sees COMPLETED, then the final numbers
        for kind in (wh.EventType.CAMPAIGN_STATUS_CHANGED, wh.EventType.CAMPAIGN_COMPLETED)
        if kind in events and kind in bodies
    ]
    if rows:
        await WebhookDelivery.bulk_create(rows, using_db=conn)
    return len(rows)


def _row(
    endpoint_id: int, kind: wh.EventType, event_id: str, body: str, campaign_id: int | None, at: datetime
) -> WebhookDelivery:
    return WebhookDelivery(
        endpoint_id=endpoint_id,
        event_id=event_id,
        event_type=kind.value,
        campaign_id=campaign_id,
        body=body,
        status=wh.DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=at,
        created_at=at,
    )


async def _stats(conn: BaseDBAsyncClient, campaign_id: int) -> StatsPayload:
    columns = ", ".join(f'"{f}"' for f in STAT_FIELDS)
    row = (await db.fetch_rows(conn, f"SELECT {columns} FROM campaign WHERE id = ?", [campaign_id]))[0]
    return {name: int(row[name]) for name in STAT_FIELDS}  # type: ignore[return-value]


async def record_test(endpoint_id: int, workspace_id: int) -> WebhookDelivery:
    """A `webhook.test` delivery to one endpoint (enabled or not: a test is asked for)."""
    at = now_utc()
    event_id = new_event_id()
    data: wh.TestData = {"message": "A test event from sendTestWebhook: your endpoint is reachable."}
    body = wh.event_body(event_id, wh.EventType.WEBHOOK_TEST, at, to_global_id("Workspace", workspace_id), data)
    row = _row(endpoint_id, wh.EventType.WEBHOOK_TEST, event_id, body, None, at)
    await row.save()
    return row


# --- the dispatcher's side ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this dispatcher may attempt now, as attempt number `attempt`."""

    id: int
    endpoint_id: int
    url: str
    secret: str
    event_id: str
    event_type: str
    body: str
    attempt: int
    created_at: datetime


_DUE = """
SELECT d.id, d.endpoint_id FROM webhook_delivery d
JOIN webhook_endpoint e ON e.id = d.endpoint_id
WHERE d.status = 'PENDING' AND d.next_attempt_at <= ? AND (d.locked_until IS NULL OR d.locked_until <= ?)
  AND (e.enabled = ? OR d.event_type = ?)
  AND (d.campaign_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM webhook_delivery p
        WHERE p.endpoint_id = d.endpoint_id AND p.campaign_id = d.campaign_id
          AND p.status = 'PENDING' AND p.id < d.id))
ORDER BY d.next_attempt_at, d.id
LIMIT ?
"""


async def due(now: datetime, limit: int) -> list[tuple[int, int]]:
    """(delivery id, endpoint id) of deliveries that may be attempted now, oldest
    first: due, not held by an attempt in flight, of an enabled endpoint, and the
    oldest pending one of their campaign for that endpoint (the order invariant)."""
    rows = await db.fetch_rows(db.client(), _DUE, [now, now, True, wh.EventType.WEBHOOK_TEST.value, limit])
    return [(int(r["id"]), int(r["endpoint_id"])) for r in rows]


async def claim(delivery_id: int, now: datetime, hold: timedelta) -> Claimed | None:
    """Take one due delivery for an attempt (None: another dispatcher took it first)."""
    conn = db.client()
    taken = await db.fetch_rows(
        conn,
        "UPDATE webhook_delivery SET locked_until = ?, attempts = attempts + 1, last_attempt_at = ? "
        "WHERE id = ? AND status = 'PENDING' AND (locked_until IS NULL OR locked_until <= ?) RETURNING attempts",
        [now + hold, now, delivery_id, now],
    )
    if not taken:
        return None
    row = await WebhookDelivery.filter(id=delivery_id).select_related("endpoint").first()
    if row is None:
        return None  # its endpoint was deleted in between
    return Claimed(
        id=row.id,
        endpoint_id=row.endpoint_id,
        url=row.endpoint.url,
        secret=row.endpoint.secret,
        event_id=row.event_id,
        event_type=row.event_type,
        body=row.body,
        attempt=int(taken[0]["attempts"]),
        created_at=row.created_at,
    )


async def finish(
    claimed: Claimed,
    status: wh.DeliveryStatus,
    *,
    now: datetime,
    status_code: int | None,
    error: str | None,
    next_attempt_at: datetime | None = None,
) -> bool:
    """Write the attempt's outcome: DELIVERED, FAILED, or PENDING again at
    `next_attempt_at`. False when this attempt's claim was superseded (nothing written)."""
    fields: dict[str, object] = {
        "status": status.value,
        "locked_until": None,
        "last_status_code": status_code,
        "last_error": error,
    }
    if status is wh.DeliveryStatus.DELIVERED:
        fields["delivered_at"] = now
    if next_attempt_at is not None:
        fields["next_attempt_at"] = next_attempt_at
    assigns = ", ".join(f"{k} = ?" for k in fields)
    changed = await db.execute(
        db.client(),
        f"UPDATE webhook_delivery SET {assigns} WHERE id = ? AND attempts = ? AND status = 'PENDING'",
        [*fields.values(), claimed.id, claimed.attempt],
    )
    return changed == 1


async def prune(before: datetime) -> int:
    """Forget finished deliveries (DELIVERED, FAILED) of events older than `before`:
    the log keeps LOG_RETENTION of history, not all of it. Returns how many went."""
    return await db.execute(
        db.client(), "DELETE FROM webhook_delivery WHERE status <> 'PENDING' AND created_at < ?", [before]
    )
