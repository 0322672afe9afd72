"""The SendingStore of domain/sending.py over the database.

Every method is one short transaction with no network I/O inside (SQLite holds its
single connection for a whole transaction). Counters move with the rows they count.

Fencing (docs/DESIGN.md, "Fencing"): `campaign.lease_fence` grows with every lease
taken. A claim succeeds only while the claimer's owner and fence are the campaign's and
its lease has not expired; each claimed row keeps the fence it was claimed under
(`message.claim_fence`), and every outcome is written only to rows that still carry the
writer's fence. So a run that lost its lease (paused past it, cut off from the
database) claims nothing more, and its late outcomes settle exactly the messages it
had in flight: an accepted send is recorded even after a takeover (the new run left
those rows in doubt, it did not resend them), while nothing it writes can touch a row
that a newer run claimed.

Opt-outs (domain/optouts.py) are honoured here, at claim time: before each claim the
next PENDING messages whose phone is on the workspace's opt-out list fail `opted_out`
without a provider call (also in a campaign that was running when the phone opted
out), and the claim itself never takes one. A send answered 131050 opts the phone out.
A send answered 131049 (WhatsApp's per-user marketing limit) waits hours instead of
failing (domain/waiting.py): PENDING with `not_before`, which claims skip; once all a
campaign has left waits, `remaining` notes why and until when on the campaign.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from domain.lifecycle import Action, CampaignStatus
from domain.messages import OPTED_OUT_CODE, describe, failure_text
from domain.optouts import MARKETING_STOPPED, OptOutSource
from domain.senders import DailyLimit
from domain.sending import (
    IN_DOUBT_CODE,
    CampaignToSend,
    Claimed,
    Counts,
    InDoubtPolicy,
    Lease,
    Reconciled,
    Recorded,
    RecordedStatus,
    Remaining,
    Written,
)
from domain.waiting import WaitReason, waiting_reason
from models import Campaign, Template
from runtime import clock
from services import counters, daily_limit, db, delivery, optouts, waiting
from services.reconcile import reconcile_campaign
from services.transitions import AfterTransition, apply_system_action

log = logging.getLogger("campaigns.store")


def _now() -> datetime:
    return datetime.now(UTC)


# The fence goes with each row's values (v.fence), not as one parameter: a filter on
# t.claim_fence = <constant> made PostgreSQL's planner, whose statistics see that column
# NULL, expect one row, scan the table and loop over the values inside it: 0.6 s for a
# batch of 700. As a join condition it stays a lookup by primary key.
_FENCE = ("fence", "int")
_FENCED = "t.claim_fence = v.fence"


#: the next claimable messages in id order (campaign, after, business now, workspace,
#: limit): PENDING, not waiting, not to an opted-out phone (one committed since
#: `_suppress` is left PENDING, failed by the next one)
_NEXT = (
    "SELECT {} FROM message WHERE campaign_id = ? AND status = 'PENDING' AND id > ? "
    "AND (not_before IS NULL OR not_before <= ?) "
    "AND NOT EXISTS (SELECT 1 FROM opt_out o WHERE o.workspace_id = ? AND o.phone = message.phone) "
    "ORDER BY id LIMIT ?"
)
#: what a claim writes on each row it takes (the fence first): waiting is over for it
_CLAIMED = (
    "status = 'SENDING', attempts = attempts + 1, claim_fence = ?, doubt_at = NULL, "
    "not_before = NULL, wait_reason = NULL, error_code = NULL, error_message = NULL"
)
#: the claimer still holds the lease (campaign id, owner, fence, real now)
_HELD = (
    "EXISTS (SELECT 1 FROM campaign WHERE id = ? AND status = 'PROCESSING' AND lease_owner = ? "
    "AND lease_fence = ? AND lease_expires_at > ?)"
)


def _claimed(rows: Sequence[dict[str, Any]]) -> list[Claimed]:
    """Claimed rows in id order, their variables as a dict."""
    return [
        Claimed(r["id"], r["phone"], json.loads(v) if isinstance((v := r["variables"]), str) else v, r["send_round"])
        for r in sorted(rows, key=lambda r: r["id"])
    ]


def _counts(row: dict[str, object] | None) -> Counts | None:
    if row is None:
        return None
    return Counts(CampaignStatus(str(row["status"])), int(row["sent"]), int(row["failed"]))  # type: ignore[call-overload]


class SqlSendingStore:
    def __init__(self, after: AfterTransition | None = None) -> None:
        self.after = after

    # ------------------------------------------------------------------ the lease

    async def acquire_lease(self, campaign_id: int, owner: str, ttl: float) -> Lease | None:
        now = _now()
        taken = await db.fetch(
            db.client(),
            "UPDATE campaign SET lease_owner = ?, lease_expires_at = ?, lease_fence = lease_fence + 1 "
            "WHERE id = ? AND status IN ('QUEUED', 'PROCESSING') "
            "AND (lease_owner IS NULL OR lease_expires_at < ?) RETURNING lease_fence",
            [owner, now + timedelta(seconds=ttl), campaign_id, now],
        )
        if not taken:
            return None
        fence = int(taken[0]["lease_fence"])
        campaign = await Campaign.get(id=campaign_id)
        if campaign.status is CampaignStatus.QUEUED:
            claimed = await apply_system_action(
                campaign_id, Action.CLAIM, actor="worker", expect=CampaignStatus.QUEUED, after=self.after
            )
            campaign = claimed or await Campaign.get(id=campaign_id)
        lease = Lease(
            CampaignToSend(
                id=campaign.id,
                workspace_id=campaign.workspace_id,
                body=campaign.body,
                template_name=campaign.template_name,
                template_language=campaign.template_language,
                send_rate=campaign.send_rate,
                failure_threshold=campaign.failure_threshold,
                failure_sample_size=campaign.failure_sample_size,
                sender_id=campaign.sender_id,
                template_parameter_names=await _named_parameters(campaign),
                delivery=delivery.plan_of(campaign),
            ),
            owner,
            fence,
            Counts(campaign.status, campaign.sent, campaign.failed),
        )
        if (
            campaign.status is not CampaignStatus.PROCESSING
            or campaign.lease_owner != owner
            or campaign.lease_fence != fence
        ):
            await self.release_lease(lease)
            return None
        async with db.in_transaction() as conn:
            # Whatever an earlier run left SENDING may have reached the provider: in doubt
            # from now, settled by its status webhook or reconciled after the window.
            doubted = await db.execute(
                conn,
                "UPDATE message SET doubt_at = ? WHERE campaign_id = ? AND status = 'SENDING' AND doubt_at IS NULL",
                [now, campaign_id],
            )
            await db.execute(
                conn, "UPDATE campaign SET started_at = ? WHERE id = ? AND started_at IS NULL", [now, campaign_id]
            )
            # a run starts claiming: what the last one noted about waiting is old news
            await db.execute(
                conn,
                "UPDATE campaign SET next_send_at = NULL, status_reason = NULL "
                "WHERE id = ? AND next_send_at IS NOT NULL",
                [campaign_id],
            )
        if doubted:
            log.warning("campaign %s: %s messages of an earlier run are in doubt", campaign_id, doubted)
        return lease

    async def renew_lease(self, lease: Lease, ttl: float) -> Counts | None:
        rows = await db.fetch(
            db.client(),
            "UPDATE campaign SET lease_expires_at = ? WHERE id = ? AND lease_owner = ? AND lease_fence = ? "
            "AND status = 'PROCESSING' RETURNING status, sent, failed",
            [_now() + timedelta(seconds=ttl), lease.campaign.id, lease.owner, lease.fence],
        )
        return _counts(rows[0] if rows else None)

    async def release_lease(self, lease: Lease) -> None:
        await db.execute(
            db.client(),
            "UPDATE campaign SET lease_owner = NULL, lease_expires_at = NULL "
            "WHERE id = ? AND lease_owner = ? AND lease_fence = ?",
            [lease.campaign.id, lease.owner, lease.fence],
        )

    # ------------------------------------------------------------- claim and record

    async def claim(self, lease: Lease, limit: int, after: int = 0) -> list[Claimed]:
        """Up to `limit` claimable messages, in id order, under the lease's fence. Waiting
        (`not_before`) is judged by the business clock, the lease by the real one. A
        sender with a limited tier is gated by its daily limit (`_claim_limited`);
        an unlimited one takes this one statement."""
        # `id > after` starts the index scan past what this run already claimed: the
        # index entries of those rows as PENDING are dead until vacuum, and scanning over
        # them on every claim made each claim slower than the last.
        skip_locked = " FOR UPDATE SKIP LOCKED" if db.is_postgres() else ""
        campaign_id, workspace_id = lease.campaign.id, lease.campaign.workspace_id
        now, due = _now(), clock.now()
        await self._suppress(lease, limit, after, now, due)
        quota = lease.campaign.daily_limit
        if quota is not None and quota.limit is not None:
            return await self._claim_limited(lease, quota, limit, after, now, due)
        rows = await db.fetch(
            db.client(),
            f"UPDATE message SET {_CLAIMED} WHERE id IN ({_NEXT.format('id')}{skip_locked}) "
            f"AND {_HELD} RETURNING id, phone, variables, send_round",
            [lease.fence, campaign_id, after, due, workspace_id, limit, campaign_id, lease.owner, lease.fence, now],
        )
        return _claimed(rows)

    async def _claim_limited(
        self, lease: Lease, quota: DailyLimit, limit: int, after: int, now: datetime, due: datetime
    ) -> list[Claimed]:
        """The claim under the sender's daily limit (services/daily_limit.py), in one
        transaction serialised per sender: the next candidates as the plain claim picks
        them, of which those whose phone counts already in the window and as many new
        phones as the limit leaves room for; they are claimed and counted from now. If
        the limit refused any, the campaign's messages to new phones wait until a slot
        frees."""
        c = lease.campaign
        skip_locked = " FOR UPDATE SKIP LOCKED" if db.is_postgres() else ""
        async with db.in_transaction() as conn:
            await daily_limit.serialise(conn, quota.key)
            held = await db.fetch(conn, f"SELECT 1 AS held WHERE {_HELD}", [c.id, lease.owner, lease.fence, now])
            if not held:
                return []
            candidates = await db.fetch(
                conn, _NEXT.format("id, phone") + skip_locked, [c.id, after, due, c.workspace_id, limit]
            )
            if not candidates:
                return []
            admitted = await daily_limit.admit(conn, quota, [(int(r["id"]), str(r["phone"])) for r in candidates], due)
            rows: list[dict[str, Any]] = []
            if admitted.ids:
                among, ids = db.among(conn, "id", admitted.ids)
                rows = await db.fetch(
                    conn,
                    f"UPDATE message SET {_CLAIMED} WHERE {among} AND status = 'PENDING' AND {_HELD} "
                    "RETURNING id, phone, variables, send_round",
                    [lease.fence, ids, c.id, lease.owner, lease.fence, now],
                )
            await daily_limit.claimed(conn, quota, c.id, [str(r["phone"]) for r in rows], admitted.refused, due)
        return _claimed(rows)

    async def _suppress(self, lease: Lease, limit: int, after: int, now: datetime, due: datetime) -> int:
        """Fail `opted_out`, without a provider call, the messages among the next `limit`
        claimable ones (the claim's own window: PENDING, not waiting at the business
        time `due`) whose phone is on the workspace's opt-out list; how many. A waiting
        one is failed once it is due."""
        campaign_id = lease.campaign.id
        found = await db.fetch(
            db.client(),
            "SELECT p.id FROM (SELECT id, phone FROM message WHERE campaign_id = ? AND status = 'PENDING' "
            "AND id > ? AND (not_before IS NULL OR not_before <= ?) ORDER BY id LIMIT ?) AS p "
            "WHERE EXISTS (SELECT 1 FROM opt_out o WHERE o.workspace_id = ? AND o.phone = p.phone)",
            [campaign_id, after, due, limit, lease.campaign.workspace_id],
        )
        if not found:
            return 0
        ids = sorted(int(r["id"]) for r in found)
        async with db.in_transaction() as conn:
            await db.lock_rows(conn, "campaign", [campaign_id])
            held = await db.fetch(
                conn,
                "SELECT 1 AS held FROM campaign WHERE id = ? AND status = 'PROCESSING' AND lease_owner = ? "
                "AND lease_fence = ? AND lease_expires_at > ?",
                [campaign_id, lease.owner, lease.fence, now],
            )
            if not held:
                return 0
            failed = await db.update_each(
                conn,
                "message",
                "status = 'FAILED', error_code = :code, error_message = :text, failed_at = :now, not_before = NULL",
                "t.status = 'PENDING'",
                (),
                [(i,) for i in ids],
                code=OPTED_OUT_CODE,
                text=describe(OPTED_OUT_CODE),
                now=now,
            )
            await counters.move(conn, campaign_id, pending=-len(failed), failed=len(failed))
        if failed:
            log.info("campaign %s: %s messages to opted-out phones not sent", campaign_id, len(failed))
        return len(failed)

    async def _note_waiting(self, campaign_id: int, now: datetime) -> None:
        """Everything the campaign has left waits (domain/waiting.py): say on it why and
        until when (a PROCESSING campaign's status reason; the next run clears it)."""
        groups = await delivery.wait_groups(db.client(), campaign_id, now)
        if not groups:
            return
        zone_name = await db.fetch_val(db.client(), "SELECT time_zone FROM campaign WHERE id = ?", [campaign_id])
        until = min(g.until for g in groups)
        await db.execute(
            db.client(),
            "UPDATE campaign SET next_send_at = ?, status_reason = ? WHERE id = ? AND status = 'PROCESSING' "
            "AND (next_send_at IS NULL OR next_send_at <> ? OR status_reason IS NULL OR status_reason <> ?)",
            [until, (reason := waiting_reason(groups, zone_name)), campaign_id, until, reason],
        )

    async def record(self, lease: Lease, outcomes: Sequence[Recorded]) -> Written:
        """Every outcome lands only on a row this lease claimed (`claim_fence`)."""
        campaign_id, fence = lease.campaign.id, lease.fence
        by = {status: [o for o in outcomes if o.status is status] for status in RecordedStatus}
        now = _now()
        async with db.in_transaction() as conn:
            await db.lock_rows(conn, "campaign", [campaign_id])
            await db.lock_rows(conn, "message", [o.message_id for o in outcomes])
            sent, sent_from_doubt = await _record_sent(conn, fence, by[RecordedStatus.SENT], now)
            by[RecordedStatus.FAILED] = await waiting.defer_claimed(conn, fence, by[RecordedStatus.FAILED], now)
            failed = await db.update_each(
                conn,
                "message",
                "status = 'FAILED', error_code = v.code, error_message = v.msg, failed_at = :now, "
                "attempts = t.attempts + v.extra, doubt_at = NULL",
                f"t.status = 'SENDING' AND {_FENCED}",
                (("code", "text"), ("msg", "text"), ("extra", "int"), _FENCE),
                [
                    # what to do, where the failure table knows (131026, 131047, ...)
                    (o.message_id, o.error_code, failure_text(o.error_code, o.error_message), o.extra_attempts, fence)
                    for o in by[RecordedStatus.FAILED]
                ],
                now=now,
            )
            await db.update_each(
                conn,
                "message",
                "doubt_at = :now, error_code = :code, error_message = v.msg, attempts = t.attempts + v.extra",
                f"t.status = 'SENDING' AND {_FENCED}",
                (("msg", "text"), ("extra", "int"), _FENCE),
                [(o.message_id, o.error_message, o.extra_attempts, fence) for o in by[RecordedStatus.IN_DOUBT]],
                now=now,
                code=IN_DOUBT_CODE,
            )
            cancelled = 0
            back = by[RecordedStatus.PENDING]
            if back:
                status = await db.fetch_val(conn, "SELECT status FROM campaign WHERE id = ?", [campaign_id])
                target = "CANCELLED" if status == CampaignStatus.CANCELLED.value else "PENDING"
                moved = await db.update_each(
                    conn,
                    "message",
                    "status = :target, attempts = t.attempts + v.extra, doubt_at = NULL",
                    f"t.status = 'SENDING' AND {_FENCED}",
                    (("extra", "int"), _FENCE),
                    [(o.message_id, o.extra_attempts, fence) for o in back],
                    target=target,
                )
                cancelled = len(moved) if target == "CANCELLED" else 0
            stopped = {o.message_id for o in by[RecordedStatus.FAILED] if o.error_code == MARKETING_STOPPED}
            if stopped & set(failed):
                await optouts.learn_for_messages(
                    conn, sorted(stopped & set(failed)), OptOutSource.ERROR_131050, "answered 131050", now
                )
            n_sent, n_failed = len(sent) + sent_from_doubt, len(failed)
            await counters.move(
                conn,
                campaign_id,
                pending=-(len(sent) + n_failed + cancelled),
                sent=n_sent,
                failed=n_failed - sent_from_doubt,
                cancelled=cancelled,
            )
            row = await db.fetch(conn, "SELECT status, sent, failed FROM campaign WHERE id = ?", [campaign_id])
        return Written(n_sent, n_failed, _counts(row[0] if row else None))

    async def reconcile(self, lease: Lease, window: float, policy: InDoubtPolicy) -> Reconciled:
        return await reconcile_campaign(lease.campaign.id, window, policy, lease=lease)

    async def remaining(self, campaign_id: int) -> Remaining:
        """What is left; when all of it waits (nothing claimable, nothing in flight), the
        campaign is told why and until when (`_note_waiting`). Waiting is judged by the
        business clock (runtime/clock.py)."""
        now = clock.now()
        rows = await db.fetch(
            db.client(),
            "SELECT status, COUNT(*) AS n, COUNT(doubt_at) AS doubts, "
            "COUNT(CASE WHEN not_before > ? THEN 1 END) AS waits FROM message "
            "WHERE campaign_id = ? AND status IN ('PENDING', 'SENDING') GROUP BY status",
            [now, campaign_id],
        )
        by = {r["status"]: r for r in rows}
        pending_row, sending_row = by.get("PENDING"), by.get("SENDING")
        pending = int(pending_row["n"]) if pending_row else 0
        waits = int(pending_row["waits"]) if pending_row else 0
        sending = int(sending_row["n"]) if sending_row else 0
        doubts = int(sending_row["doubts"]) if sending_row else 0
        left = Remaining(pending=pending - waits, sending=sending, in_doubt=doubts, waiting=waits)
        if waits and not left.pending and left.sending == left.in_doubt:
            await self._note_waiting(campaign_id, now)
        return left

    async def zones(self, campaign_id: int) -> list[str | None]:
        return await delivery.zones(db.client(), campaign_id)

    async def hold(self, lease: Lease, holds: Mapping[str | None, tuple[datetime, WaitReason]], by_zone: bool) -> int:
        return await delivery.hold(lease, holds, by_zone, _now())

    async def transition(self, campaign_id: int, action: Action, actor: str, reason: str | None) -> bool:
        done = await apply_system_action(campaign_id, action, actor=actor, reason=reason, after=self.after)
        return done is not None


async def _record_sent(
    conn: BaseDBAsyncClient, fence: int, sent: Sequence[Recorded], now: datetime
) -> tuple[list[int], int]:
    """Accepted sends: (ids moved from pending to SENT, how many moved from FAILED)."""
    if not sent:
        return [], 0
    values = [(o.message_id, o.provider_message_id, o.extra_attempts, o.send_round, fence) for o in sent]
    columns = (("pid", "text"), ("extra", "int"), ("rnd", "int"), _FENCE)
    sets = (
        "status = 'SENT', provider_message_id = v.pid, sent_at = :now, attempts = t.attempts + v.extra, "
        "doubt_at = NULL, error_code = NULL, error_message = NULL, failed_at = NULL"
    )
    mine = f"{_FENCED} AND t.send_round = v.rnd"
    # SENDING, or PENDING again after reconciliation put it back for a resend not yet made
    done = await db.update_each(
        conn, "message", sets, f"{mine} AND t.status IN ('SENDING', 'PENDING')", columns, values, now=now
    )
    if len(done) == len(sent):
        return done, 0
    rest = [v for v in values if v[0] not in set(done)]
    # failed `in_doubt` by reconciliation meanwhile: the provider did take it
    from_doubt = await db.update_each(
        conn,
        "message",
        sets,
        f"{mine} AND t.status = 'FAILED' AND t.error_code = :code",
        columns,
        rest,
        now=now,
        code=IN_DOUBT_CODE,
    )
    rest = [v for v in rest if v[0] not in set(from_doubt)]
    if rest:
        # The others were settled by their receipts first (which carry the same provider
        # id), or a newer run resent them after reconciliation: then the provider has two
        # copies, which only a late answer like this one can reveal.
        resent = await db.fetch_val(
            conn,
            f"SELECT COUNT(*) AS n FROM message WHERE id IN ({', '.join('?' * len(rest))}) "
            "AND (claim_fence IS NULL OR claim_fence <> ?)",
            [*(v[0] for v in rest), fence],
        )
        if resent:
            log.warning("%s sends were accepted after their messages had been resent: the provider has two", resent)
    return done, len(from_doubt)


async def _named_parameters(campaign: Campaign) -> tuple[str, ...]:
    """A NAMED template's parameter names from the sender's registry (empty otherwise)."""
    if not campaign.template_name or campaign.sender_id is None:
        return ()
    template = await Template.get_or_none(
        sender_id=campaign.sender_id, name=campaign.template_name, language=campaign.template_language or ""
    )
    if template is None or template.parameter_format != "NAMED":
        return ()
    return tuple(str(p) for p in template.parameters or ())
