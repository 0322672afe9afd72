"""The SendingStore of domain/sending.py over the database.

Every method is one short transaction with no network I/O inside (SQLite holds its
single connection for a whole transaction). Counters move with the rows they count.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from domain.lifecycle import Action, CampaignStatus
from domain.sending import CampaignToSend, Claimed, Recorded
from models import Campaign
from services import db
from services.transitions import AfterTransition, apply_system_action


def _now() -> datetime:
    return datetime.now(UTC)


class SqlSendingStore:
    def __init__(self, after: AfterTransition | None = None) -> None:
        self.after = after

    async def acquire_lease(self, campaign_id: int, owner: str, ttl: float) -> CampaignToSend | None:
        now = _now()
        taken = await db.execute(
            db.client(),
            "UPDATE campaign SET lease_owner = ?, lease_expires_at = ? WHERE id = ? "
            "AND status IN ('QUEUED', 'PROCESSING') "
            "AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires_at < ?)",
            [owner, now + timedelta(seconds=ttl), campaign_id, owner, now],
        )
        if not taken:
            return None
        campaign = await Campaign.get(id=campaign_id)
        if campaign.status is CampaignStatus.QUEUED:
            claimed = await apply_system_action(
                campaign_id, Action.CLAIM, actor="worker", expect=CampaignStatus.QUEUED, after=self.after
            )
            campaign = claimed or await Campaign.get(id=campaign_id)
        if campaign.status is not CampaignStatus.PROCESSING or campaign.lease_owner != owner:
            await self.release_lease(campaign_id, owner)
            return None
        await db.execute(
            db.client(),
            "UPDATE campaign SET started_at = ? WHERE id = ? AND started_at IS NULL",
            [now, campaign_id],
        )
        return CampaignToSend(
            id=campaign.id,
            workspace_id=campaign.workspace_id,
            body=campaign.body,
            template_name=campaign.template_name,
            template_language=campaign.template_language,
            send_rate=campaign.send_rate,
            failure_threshold=campaign.failure_threshold,
            failure_sample_size=campaign.failure_sample_size,
        )

    async def renew_lease(self, campaign_id: int, owner: str, ttl: float) -> bool:
        return bool(
            await db.execute(
                db.client(),
                "UPDATE campaign SET lease_expires_at = ? WHERE id = ? AND lease_owner = ? AND status = 'PROCESSING'",
                [_now() + timedelta(seconds=ttl), campaign_id, owner],
            )
        )

    async def release_lease(self, campaign_id: int, owner: str) -> None:
        await db.execute(
            db.client(),
            "UPDATE campaign SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND lease_owner = ?",
            [campaign_id, owner],
        )

    async def recover_in_doubt(self, campaign_id: int, resend: bool) -> int:
        """SENDING messages left by a dead owner (we hold the lease now). With a provider
        that honours idempotency keys they are resent under the same key; otherwise they
        fail as `in_doubt`, and RETRY_FAILED resends them deliberately."""
        async with db.in_transaction() as conn:
            await db.lock_rows(conn, "campaign", [campaign_id])
            if resend:
                return await db.execute(
                    conn,
                    "UPDATE message SET status = 'PENDING' WHERE campaign_id = ? AND status = 'SENDING'",
                    [campaign_id],
                )
            moved = await db.execute(
                conn,
                "UPDATE message SET status = 'FAILED', error_code = 'in_doubt', failed_at = ?, "
                "error_message = 'The worker stopped during the provider call; it may have been sent.' "
                "WHERE campaign_id = ? AND status = 'SENDING'",
                [_now(), campaign_id],
            )
            if moved:
                await _move_counters(conn, campaign_id, pending=-moved, failed=moved)
            return moved

    async def claim(self, campaign_id: int, owner: str, limit: int) -> list[Claimed]:
        skip_locked = " FOR UPDATE SKIP LOCKED" if db.is_postgres() else ""
        rows = await db.fetch(
            db.client(),
            "UPDATE message SET status = 'SENDING', attempts = attempts + 1 WHERE id IN ("
            f"SELECT id FROM message WHERE campaign_id = ? AND status = 'PENDING' ORDER BY id LIMIT ?{skip_locked}) "
            "AND EXISTS (SELECT 1 FROM campaign WHERE id = ? AND status = 'PROCESSING' AND lease_owner = ?) "
            "RETURNING id, phone, variables, send_round",
            [campaign_id, limit, campaign_id, owner],
        )
        rows.sort(key=lambda r: r["id"])
        return [
            Claimed(
                r["id"], r["phone"], json.loads(v) if isinstance((v := r["variables"]), str) else v, r["send_round"]
            )
            for r in rows
        ]

    async def record(self, campaign_id: int, outcomes: list[Recorded]) -> tuple[int, int]:
        now = _now()
        sent = [o for o in outcomes if o.status == "SENT"]
        failed = [o for o in outcomes if o.status == "FAILED"]
        back = [o for o in outcomes if o.status == "PENDING"]
        async with db.in_transaction() as conn:
            await db.lock_rows(conn, "campaign", [campaign_id])
            await db.lock_rows(conn, "message", [o.message_id for o in outcomes])
            n_sent = await _bulk_update(
                conn,
                "status = 'SENT', provider_message_id = v.pid, sent_at = ?, attempts = m.attempts + v.extra",
                ("pid", "text"),
                [(o.message_id, o.provider_message_id, o.extra_attempts) for o in sent],
                now,
            )
            if n_sent < len(sent):
                # receipts got there first and resolved some; keep their provider ids
                await _bulk_update(
                    conn,
                    "provider_message_id = v.pid",
                    ("pid", "text"),
                    [(o.message_id, o.provider_message_id, o.extra_attempts) for o in sent],
                    None,
                    where="m.provider_message_id IS NULL",
                )
            n_failed = await _bulk_update(
                conn,
                "status = 'FAILED', error_code = v.code, error_message = v.msg, failed_at = ?, "
                "attempts = m.attempts + v.extra",
                ("code", "text"),
                [(o.message_id, o.error_code, o.error_message, o.extra_attempts) for o in failed],
                now,
                extra_column=("msg", "text"),
            )
            cancelled = 0
            if back:
                status = await db.fetch_val(conn, "SELECT status FROM campaign WHERE id = ?", [campaign_id])
                target = "CANCELLED" if status == CampaignStatus.CANCELLED.value else "PENDING"
                moved = await _bulk_update(
                    conn,
                    f"status = '{target}', attempts = m.attempts + v.extra",
                    None,
                    [(o.message_id, o.extra_attempts) for o in back],
                    None,
                )
                cancelled = moved if target == "CANCELLED" else 0
            if n_sent or n_failed or cancelled:
                await _move_counters(
                    conn,
                    campaign_id,
                    pending=-(n_sent + n_failed + cancelled),
                    sent=n_sent,
                    failed=n_failed,
                    cancelled=cancelled,
                )
        return n_sent, n_failed

    async def unresolved(self, campaign_id: int) -> int:
        return int(
            await db.fetch_val(
                db.client(),
                "SELECT COUNT(*) AS n FROM message WHERE campaign_id = ? AND status IN ('PENDING', 'SENDING')",
                [campaign_id],
            )
            or 0
        )

    async def transition(self, campaign_id: int, action: str, actor: str, reason: str | None) -> bool:
        done = await apply_system_action(campaign_id, Action(action), actor=actor, reason=reason, after=self.after)
        return done is not None


def _variables(value: Any) -> dict[str, object]:
    # jsonb arrives as text from asyncpg without a codec, and SQLite stores text
    return json.loads(value) if isinstance(value, str) else dict(value)


async def _move_counters(conn: BaseDBAsyncClient, campaign_id: int, **deltas: int) -> None:
    sets = ", ".join(f"{name} = {name} + ?" for name in deltas)
    await db.execute(conn, f"UPDATE campaign SET {sets} WHERE id = ?", [*deltas.values(), campaign_id])


async def _bulk_update(
    conn: BaseDBAsyncClient,
    assignments: str,
    column: tuple[str, str] | None,
    rows: Sequence[tuple[Any, ...]],
    stamp: datetime | None,
    *,
    extra_column: tuple[str, str] | None = None,
    where: str = "m.status = 'SENDING'",
) -> int:
    """UPDATE message m SET <assignments> for rows (id, [column], [extra_column], extra)
    WHERE <where>; returns the rows changed. One statement on PostgreSQL (unnest), one
    executemany on SQLite."""
    if not rows:
        return 0
    names = ["id"] + [c[0] for c in (column, extra_column) if c] + ["extra"]
    types = ["bigint"] + [c[1] for c in (column, extra_column) if c] + ["int"]
    stamp_args = [stamp] if stamp is not None and "?" in assignments else []
    if db.is_postgres(conn):
        columns = list(zip(*rows, strict=True))
        unnest = ", ".join(f"?::{t}[]" for t in types)
        sql = (
            f"UPDATE message m SET {assignments} FROM unnest({unnest}) AS v({', '.join(names)}) "
            f"WHERE m.id = v.id AND {where}"
        )
        # the stamp placeholder comes first in the text, so first in the arguments
        return await db.execute(conn, sql, [*stamp_args, *[list(c) for c in columns]])
    # SQLite: the same statement per row, with named parameters for v.<name> and the stamp
    named = assignments.replace("?", ":stamp")
    for name in names:
        named = named.replace(f"v.{name}", f":{name}")
    sql = f"UPDATE message AS m SET {named} WHERE m.id = :id AND {where}"
    before = await db.fetch_val(conn, "SELECT total_changes() AS n")
    await conn.execute_many(sql, [dict(zip(names, row, strict=True)) | {"stamp": stamp} for row in rows])  # type: ignore[misc]
    after = await db.fetch_val(conn, "SELECT total_changes() AS n")
    return int(after) - int(before)
