"""Messages put to wait after WhatsApp's per-user marketing limit (131049), instead of
failing (domain/waiting.py): PENDING again with `not_before`, which claims skip, and a
`deferrals` count that bounds how often. Two ways in, in their callers' transactions:
a send answered 131049 (the sending store's outcomes) and a `failed` status 131049 of
an accepted send (the receipts). A message that waited as often as the schedule allows
fails 131049 as before: RETRY_FAILED can send it again later.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from domain.lifecycle import CampaignStatus
from domain.sending import Recorded
from domain.waiting import MARKETING_LIMIT, WaitReason, deferral_s, deferred_text
from services import counters, db

log = logging.getLogger("campaigns.waiting")

#: campaigns whose messages failed by status may still wait to be sent: those that send,
#: or will again once resumed
_STILL_SENDING = (CampaignStatus.QUEUED.value, CampaignStatus.PROCESSING.value, CampaignStatus.PAUSED.value)


def _stamp(conn: BaseDBAsyncClient, at: datetime) -> object:
    return at if db.is_postgres(conn) else at.isoformat(" ")


async def _deferrals(conn: BaseDBAsyncClient, ids: Sequence[int]) -> dict[int, int]:
    among, values = db.among(conn, "id", ids)
    rows = await db.fetch(conn, f"SELECT id, deferrals FROM message WHERE {among}", [values])
    return {int(r["id"]): int(r["deferrals"]) for r in rows}


async def defer_claimed(
    conn: BaseDBAsyncClient, fence: int, failed: Sequence[Recorded], now: datetime
) -> list[Recorded]:
    """Of a run's failures, those with 131049 wait (while the schedule allows), on rows
    this run claimed (`claim_fence`); the others are returned, to be written as
    failures. SENDING and PENDING both count as pending: no counter moves."""
    limited = [o for o in failed if o.error_code == MARKETING_LIMIT]
    if not limited:
        return list(failed)
    waited = await _deferrals(conn, [o.message_id for o in limited])
    values = []
    for o in limited:
        wait = deferral_s(waited.get(o.message_id, 0))
        if wait is not None:
            until = now + timedelta(seconds=wait)
            values.append(
                (o.message_id, _stamp(conn, until), deferred_text(until, o.error_message), o.extra_attempts, fence)
            )
    deferred = await db.update_each(
        conn,
        "message",
        "status = 'PENDING', not_before = v.until, wait_reason = :reason, deferrals = t.deferrals + 1, "
        "error_code = :code, "
        "error_message = v.msg, attempts = t.attempts + v.extra, doubt_at = NULL",
        "t.status = 'SENDING' AND t.claim_fence = v.fence",
        (("until", "timestamptz"), ("msg", "text"), ("extra", "int"), ("fence", "int")),
        values,
        code=MARKETING_LIMIT,
        reason=WaitReason.MARKETING_LIMIT.value,
    )
    if deferred:
        log.info("%s messages wait for WhatsApp's per-user marketing limit (131049)", len(deferred))
    done = set(deferred)
    return [o for o in failed if o.message_id not in done]


async def defer_failed(conn: BaseDBAsyncClient, failures: Mapping[int, str | None], now: datetime) -> dict[int, int]:
    """Messages a status just failed with 131049 (message id -> the provider's words), of
    campaigns still sending or paused, wait instead: PENDING in a new send round (the
    accepted send is over: its late statuses must not settle the next one), counters
    moved from failed back to pending. Per campaign, how many (a completed campaign's
    stay failed: RETRY_FAILED sends them)."""
    if not failures:
        return {}
    waited = await _deferrals(conn, list(failures))
    values = []
    for message_id, text in sorted(failures.items()):
        wait = deferral_s(waited.get(message_id, 0))
        if wait is not None:
            until = now + timedelta(seconds=wait)
            values.append((message_id, _stamp(conn, until), deferred_text(until, text)))
    rows = await db.update_each(
        conn,
        "message",
        "status = 'PENDING', not_before = v.until, wait_reason = :reason, deferrals = t.deferrals + 1, "
        "send_round = t.send_round + 1, "
        "error_message = v.msg, provider_message_id = NULL, sent_at = NULL, delivered_at = NULL, read_at = NULL, "
        "failed_at = NULL, doubt_at = NULL",
        "t.status = 'FAILED' AND t.error_code = :code AND EXISTS (SELECT 1 FROM campaign c "
        "WHERE c.id = t.campaign_id AND c.status IN (:queued, :processing, :paused))",
        (("until", "timestamptz"), ("msg", "text")),
        values,
        code=MARKETING_LIMIT,
        reason=WaitReason.MARKETING_LIMIT.value,
        **dict(zip(("queued", "processing", "paused"), _STILL_SENDING, strict=True)),
    )
    if not rows:
        return {}
    moved: dict[int, int] = {}
    marks = ", ".join("?" * len(rows))
    found = await db.fetch(
        conn, f"SELECT campaign_id, COUNT(*) AS n FROM message WHERE id IN ({marks}) GROUP BY campaign_id", rows
    )
    for row in found:
        moved[int(row["campaign_id"])] = int(row["n"])
    for campaign_id in sorted(moved):
        await counters.move(conn, campaign_id, failed=-moved[campaign_id], pending=moved[campaign_id])
    log.info("%s messages failed by status with 131049 wait to be sent again", len(rows))
    return moved
