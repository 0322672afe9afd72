"""In-doubt messages: settled by their status webhooks, or reconciled after a window.

A message is in doubt while it is SENDING with `doubt_at` set: a run died or lost its
lease with the call in flight, or the call's answer was lost (timeout, reset). The
WhatsApp Cloud API has no idempotency key, so resending at once could deliver twice;
instead every status webhook carries our `biz_opaque_callback_data`, and any status
settles the message with its provider id (services/receipts.py). What no status
settled within the reconciliation window is resent or failed `in_doubt`, by policy
(domain.sending.InDoubtPolicy; docs/DESIGN.md, "Reconciliation").

Also the sweep's view of the campaigns that need it: active ones nobody leases, and
any whose messages are SENDING without a live lease (a partial index keeps that scan to
the rows in flight).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.lifecycle import CampaignStatus
from domain.sending import IN_DOUBT_CODE, InDoubtPolicy, Lease, Reconciled
from services import counters, db

#: a resend makes sense only where the campaign can still send
RESENDABLE = frozenset({CampaignStatus.QUEUED, CampaignStatus.PROCESSING, CampaignStatus.PAUSED, CampaignStatus.FAILED})

IN_DOUBT_TEXT = (
    "No answer from the provider and no status webhook within the reconciliation window, so it may or may "
    "not have been sent; RETRY_FAILED sends it again."
)


def _now() -> datetime:
    return datetime.now(UTC)


async def reconcile_campaign(
    campaign_id: int, window: float, policy: InDoubtPolicy, *, lease: Lease | None = None, now: datetime | None = None
) -> Reconciled:
    """Settle the campaign's messages in doubt for longer than `window` seconds.

    With `lease`, only while that lease is the campaign's (the run reconciling its own);
    without, only while no live lease exists (the sweep), and then the SENDING rows of a
    dead run are put in doubt first (their window starts now)."""
    now = now or _now()
    cutoff = now - timedelta(seconds=window)
    async with db.in_transaction() as conn:
        await db.lock_rows(conn, "campaign", [campaign_id])
        rows = await db.fetch(
            conn,
            "SELECT status, lease_owner, lease_fence, (lease_owner IS NULL OR lease_expires_at < ?) AS free, "
            "last_receipt_at IS NOT NULL AS receipts FROM campaign WHERE id = ?",
            [now, campaign_id],
        )
        if not rows:
            return Reconciled()
        row = rows[0]
        if lease is not None:
            if row["lease_owner"] != lease.owner or int(row["lease_fence"]) != lease.fence:
                return Reconciled()
        else:
            if not row["free"]:
                return Reconciled()  # a live run owns its SENDING rows
            await db.execute(
                conn,
                "UPDATE message SET doubt_at = ? WHERE campaign_id = ? AND status = 'SENDING' AND doubt_at IS NULL",
                [now, campaign_id],
            )
        resent = 0
        if policy is InDoubtPolicy.RESEND and CampaignStatus(row["status"]) in RESENDABLE and row["receipts"]:
            # Only where receipts were applied after the message went in doubt: statuses do
            # reach us, so the silence about this one means the provider never took it.
            resent = await db.execute(
                conn,
                "UPDATE message SET status = 'PENDING', doubt_at = NULL, error_code = NULL, error_message = NULL "
                "WHERE campaign_id = ? AND status = 'SENDING' AND doubt_at <= ? "
                "AND doubt_at < (SELECT last_receipt_at FROM campaign WHERE id = ?)",
                [campaign_id, cutoff, campaign_id],
            )
        failed = await db.execute(
            conn,
            "UPDATE message SET status = 'FAILED', error_code = ?, error_message = ?, failed_at = ?, doubt_at = NULL "
            "WHERE campaign_id = ? AND status = 'SENDING' AND doubt_at <= ?",
            [IN_DOUBT_CODE, IN_DOUBT_TEXT, now, campaign_id, cutoff],
        )
        await counters.move(conn, campaign_id, pending=-failed, failed=failed)
    return Reconciled(resent=resent, failed=failed)


@dataclass(frozen=True, slots=True)
class Unleased:
    """A campaign the sweep looks at: nobody holds a live lease on it."""

    id: int
    status: CampaignStatus
    version: int
    fence: int
    #: not changed for a while: a job enqueued by its last transition had its chance
    settled: bool


async def unleased_campaigns(quiet_for: float, now: datetime | None = None) -> list[Unleased]:
    """Active campaigns without a live lease, and any campaign with SENDING messages
    and no live lease (a dead run's, or in doubt)."""
    now = now or _now()
    rows = await db.fetch(
        db.client(),
        "SELECT id, status, version, lease_fence, updated_at < ? AS settled FROM campaign "
        "WHERE (lease_owner IS NULL OR lease_expires_at < ?) AND (status IN ('QUEUED', 'PROCESSING') "
        "OR id IN (SELECT DISTINCT campaign_id FROM message WHERE status = 'SENDING')) ORDER BY id",
        [now - timedelta(seconds=quiet_for), now],
    )
    return [
        Unleased(
            int(r["id"]), CampaignStatus(r["status"]), int(r["version"]), int(r["lease_fence"]), bool(r["settled"])
        )
        for r in rows
    ]
