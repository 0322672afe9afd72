"""services.sending_store and services.reconcile on the real database: fenced leases,
claims and outcomes, in-doubt messages and their reconciliation. Every test ends with
the campaign's counters equal to a GROUP BY over its messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.ids import expect_id
from domain.lifecycle import Action, CampaignStatus
from domain.messages import FAILURE_TEXTS, OPTED_OUT_CODE, failure_text
from domain.optouts import OptOutSource
from domain.sending import IN_DOUBT_CODE, InDoubtPolicy, Lease, Recorded, RecordedStatus
from domain.waiting import DEFERRAL_SCHEDULE_S, MARKETING_LIMIT
from models import Campaign, Message, OptOut
from services import db, optouts
from services.reconcile import reconcile_campaign, unleased_campaigns
from services.sending_store import SqlSendingStore
from services.transitions import apply_system_action
from tests.conftest import Api
from tests.schema.states import campaign_in
from tests.services.test_receipts import assert_consistent

TTL = 15.0
store = SqlSendingStore()


async def processing(api: Api, n: int = 10, status: CampaignStatus = CampaignStatus.PROCESSING) -> int:
    view = await campaign_in(api, status, recipients=n)
    return expect_id(view["id"], "Campaign")


async def expire(pk: int) -> None:
    """The holder stopped renewing (frozen, dead): its lease is past its expiry."""
    await Campaign.filter(id=pk).update(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))


async def statuses(pk: int) -> dict[str, int]:
    rows = await db.fetch(
        db.client(), "SELECT status, COUNT(*) AS n FROM message WHERE campaign_id = ? GROUP BY status", [pk]
    )
    return {r["status"]: int(r["n"]) for r in rows}


def sent(lease: Lease, ids: list[int]) -> list[Recorded]:
    return [Recorded(i, RecordedStatus.SENT, f"wamid.{lease.fence}.{i}") for i in ids]


async def test_a_lease_is_exclusive_until_it_expires_and_each_acquisition_has_a_new_fence(api: Api) -> None:
    pk = await processing(api)
    first = await store.acquire_lease(pk, "worker-a", TTL)
    assert first is not None and first.fence == 1
    assert await store.acquire_lease(pk, "worker-b", TTL) is None
    await expire(pk)
    second = await store.acquire_lease(pk, "worker-b", TTL)
    assert second is not None and second.fence == first.fence + 1
    assert await store.renew_lease(first, TTL) is None  # the old holder learns it lost
    assert await store.renew_lease(second, TTL) is not None
    await store.release_lease(first)  # a stale release does nothing
    assert (await Campaign.get(id=pk)).lease_owner == "worker-b"


async def test_a_queued_campaign_is_claimed_into_processing_with_its_counters_as_baseline(api: Api) -> None:
    pk = await processing(api, n=4, status=CampaignStatus.QUEUED)
    lease = await store.acquire_lease(pk, "w", TTL)
    assert lease is not None
    assert (await Campaign.get(id=pk)).status is CampaignStatus.PROCESSING
    assert (lease.counts.status, lease.counts.sent, lease.counts.failed) == (CampaignStatus.PROCESSING, 0, 0)


async def test_a_stale_lease_claims_nothing(api: Api) -> None:
    pk = await processing(api, n=20)
    old = await store.acquire_lease(pk, "a", TTL)
    assert old is not None
    assert len(await store.claim(old, 5)) == 5
    await expire(pk)
    assert await store.claim(old, 5) == []  # expired: even before anyone took over
    new = await store.acquire_lease(pk, "b", TTL)
    assert new is not None
    assert await store.claim(old, 5) == []
    assert len(await store.claim(new, 5)) == 5
    await assert_consistent(pk)


async def test_a_takeover_puts_the_old_runs_sending_messages_in_doubt(api: Api) -> None:
    pk = await processing(api, n=10)
    old = await store.acquire_lease(pk, "a", TTL)
    assert old is not None
    claimed = [c.id for c in await store.claim(old, 4)]
    await expire(pk)
    assert await store.acquire_lease(pk, "b", TTL) is not None
    doubted = await Message.filter(id__in=claimed).values_list("status", "doubt_at")
    assert all(status == "SENDING" and at is not None for status, at in doubted)
    left = await store.remaining(pk)
    assert (left.pending, left.sending, left.in_doubt) == (6, 4, 4)


async def test_outcomes_of_a_stale_run_land_on_its_own_rows_and_nowhere_else(api: Api) -> None:
    """A worker paused past its lease comes back with answers: its accepted sends are
    recorded (the new run left those rows in doubt), while nothing it writes touches
    what the new run claimed meanwhile."""
    pk = await processing(api, n=10)
    old = await store.acquire_lease(pk, "a", TTL)
    assert old is not None
    mine = [c.id for c in await store.claim(old, 4)]
    await expire(pk)
    new = await store.acquire_lease(pk, "b", TTL)
    assert new is not None
    theirs = [c.id for c in await store.claim(new, 3)]
    written = await store.record(
        old,
        [
            *sent(old, mine[:2]),
            Recorded(mine[2], RecordedStatus.FAILED, error_code="131026", error_message="undeliverable"),
            Recorded(mine[3], RecordedStatus.PENDING, extra_attempts=-1),
            # the stale run's claim of these was taken over: nothing of it applies
            *sent(old, theirs[:1]),
            Recorded(theirs[1], RecordedStatus.FAILED, error_code="131026"),
            Recorded(theirs[2], RecordedStatus.PENDING, extra_attempts=-1),
        ],
    )
    assert (written.sent, written.failed) == (2, 1)
    rows = dict(await Message.filter(campaign_id=pk).values_list("id", "status"))
    assert [rows[i] for i in mine] == ["SENT", "SENT", "FAILED", "PENDING"]
    assert [rows[i] for i in theirs] == ["SENDING"] * 3
    await assert_consistent(pk)


async def test_an_accepted_send_recorded_after_reconciliation_failed_it_in_doubt(api: Api) -> None:
    pk = await processing(api, n=3)
    lease = await store.acquire_lease(pk, "a", TTL)
    assert lease is not None
    [one, *_] = [c.id for c in await store.claim(lease, 3)]
    await store.record(lease, [Recorded(one, RecordedStatus.IN_DOUBT, error_message="no answer in time")])
    done = await store.reconcile(lease, 0.0, InDoubtPolicy.FAIL)
    assert (done.resent, done.failed) == (0, 1)
    row = await Message.get(id=one)
    assert (row.status, row.error_code) == ("FAILED", IN_DOUBT_CODE)
    await assert_consistent(pk)
    # the answer comes after all: the provider did take it
    written = await store.record(lease, sent(lease, [one]))
    assert written.sent == 1
    row = await Message.get(id=one)
    assert (row.status, row.error_code, row.failed_at) == ("SENT", None, None)
    assert (await assert_consistent(pk))["failed"] == 0


async def test_reconciliation_resends_only_after_the_window_and_once_receipts_flow(api: Api) -> None:
    pk = await processing(api, n=6)
    lease = await store.acquire_lease(pk, "a", TTL)
    assert lease is not None
    ids = [c.id for c in await store.claim(lease, 3)]
    await store.record(lease, [Recorded(i, RecordedStatus.IN_DOUBT) for i in ids])
    await Campaign.filter(id=pk).update(last_receipt_at=datetime.now(UTC) + timedelta(seconds=1))
    assert (await store.reconcile(lease, 600, InDoubtPolicy.RESEND)).resent == 0  # inside the window
    done = await store.reconcile(lease, 0.0, InDoubtPolicy.RESEND)
    assert (done.resent, done.failed) == (3, 0)
    assert (await statuses(pk)) == {"PENDING": 6}
    await assert_consistent(pk)


async def test_receipts_applied_before_the_doubt_prove_nothing(api: Api) -> None:
    pk = await processing(api, n=2)
    lease = await store.acquire_lease(pk, "a", TTL)
    assert lease is not None
    await Campaign.filter(id=pk).update(last_receipt_at=datetime.now(UTC) - timedelta(hours=1))
    ids = [c.id for c in await store.claim(lease, 2)]
    await store.record(lease, [Recorded(i, RecordedStatus.IN_DOUBT) for i in ids])
    done = await store.reconcile(lease, 0.0, InDoubtPolicy.RESEND)
    assert (done.resent, done.failed) == (0, 2)
    await assert_consistent(pk)


async def test_without_receipts_flowing_in_doubt_messages_fail_instead(api: Api) -> None:
    pk = await processing(api, n=2)
    lease = await store.acquire_lease(pk, "a", TTL)
    assert lease is not None
    ids = [c.id for c in await store.claim(lease, 2)]
    await store.record(lease, [Recorded(i, RecordedStatus.IN_DOUBT) for i in ids])
    done = await store.reconcile(lease, 0.0, InDoubtPolicy.RESEND)
    assert (done.resent, done.failed) == (0, 2)
    assert (await statuses(pk)) == {"FAILED": 2}
    await assert_consistent(pk)


async def test_the_sweep_settles_a_cancelled_campaigns_stranded_messages(api: Api) -> None:
    """Finding 11: a cancelled campaign whose worker died kept SENDING rows, and its
    pending count above zero, for ever."""
    pk = await processing(api, n=8)
    lease = await store.acquire_lease(pk, "dead", TTL)
    assert lease is not None
    await store.claim(lease, 5)
    assert await apply_system_action(pk, Action.CANCEL, actor="tester")
    await expire(pk)  # the worker died: nobody renews, nobody records
    assert pk in [c.id for c in await unleased_campaigns(quiet_for=0)]
    first = await reconcile_campaign(pk, 60, InDoubtPolicy.RESEND)
    assert (first.resent, first.failed) == (0, 0)  # in doubt from now: their window starts
    later = datetime.now(UTC) + timedelta(seconds=61)
    done = await reconcile_campaign(pk, 60, InDoubtPolicy.RESEND, now=later)
    assert (done.resent, done.failed) == (0, 5)  # a cancelled campaign never resends
    counters = await assert_consistent(pk)
    assert counters["pending"] == 0 and counters["cancelled"] == 3 and counters["failed"] == 5


async def test_a_live_lease_keeps_the_sweep_away(api: Api) -> None:
    pk = await processing(api, n=4)
    lease = await store.acquire_lease(pk, "alive", TTL)
    assert lease is not None
    await store.claim(lease, 4)
    assert pk not in [c.id for c in await unleased_campaigns(quiet_for=0)]
    assert (await reconcile_campaign(pk, 0, InDoubtPolicy.FAIL)).failed == 0
    assert (await statuses(pk)) == {"SENDING": 4}


async def test_renewal_reports_the_counters_and_fails_once_paused(api: Api) -> None:
    pk = await processing(api, n=3)
    lease = await store.acquire_lease(pk, "a", TTL)
    assert lease is not None
    ids = [c.id for c in await store.claim(lease, 3)]
    await store.record(lease, [*sent(lease, ids[:2]), Recorded(ids[2], RecordedStatus.FAILED, error_code="x")])
    counts = await store.renew_lease(lease, TTL)
    assert counts is not None and (counts.sent, counts.failed) == (2, 1)
    assert await apply_system_action(pk, Action.COMPLETE, actor="worker")
    assert await store.renew_lease(lease, TTL) is None


# ------------------------------------------------------- opt-outs and waiting


async def opt_out(workspace_id: int, *phones: str, source: OptOutSource = OptOutSource.MANUAL) -> None:
    now = datetime.now(UTC)
    async with db.in_transaction() as conn:
        await optouts.learn(conn, workspace_id, [optouts.Entry(p, source, "test", now) for p in phones])


async def test_a_claim_fails_opted_out_phones_without_claiming_them_in_a_running_campaign(api: Api) -> None:
    pk = await processing(api, n=10)
    lease = await store.acquire_lease(pk, "w", TTL)
    assert lease is not None
    first = await store.claim(lease, 3)
    rows = await Message.filter(campaign_id=pk).order_by("id").values_list("id", "phone")
    # opted out while the campaign runs: one in the next claim's batch, one far behind it
    await opt_out(api.principal.workspace_id, rows[4][1], rows[9][1])
    second = await store.claim(lease, 3, after=first[-1].id)
    assert [c.id for c in second] == [rows[3][0], rows[5][0], rows[6][0]]  # the next batch, without it
    suppressed = await Message.get(id=rows[4][0])
    assert (suppressed.status, suppressed.error_code, suppressed.attempts) == ("FAILED", OPTED_OUT_CODE, 0)
    assert suppressed.error_message == FAILURE_TEXTS[OPTED_OUT_CODE] and suppressed.failed_at is not None
    assert (await Message.get(id=rows[9][0])).status == "PENDING"  # its own claim batch comes later
    rest = await store.claim(lease, 10, after=second[-1].id)
    assert [c.id for c in rest] == [rows[7][0], rows[8][0]]
    assert (await Message.get(id=rows[9][0])).error_code == OPTED_OUT_CODE
    counters = await assert_consistent(pk)
    assert (counters["failed"], counters["pending"]) == (2, 8)


async def test_an_opt_out_committed_between_suppression_and_claim_is_not_claimed(api: Api) -> None:
    pk = await processing(api, n=3)
    lease = await store.acquire_lease(pk, "w", TTL)
    assert lease is not None
    rows = await Message.filter(campaign_id=pk).order_by("id").values_list("id", "phone")
    await opt_out(api.principal.workspace_id, rows[0][1])

    # the claim statement itself never takes an opted-out phone
    async def no_suppression(*_: object) -> int:
        return 0

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "_suppress", no_suppression)
        claimed = await store.claim(lease, 3)
    assert [c.id for c in claimed] == [rows[1][0], rows[2][0]]
    assert (await Message.get(id=rows[0][0])).status == "PENDING"
    assert await store.claim(lease, 3) == [] and (await Message.get(id=rows[0][0])).status == "FAILED"
    await assert_consistent(pk)


async def test_a_lost_lease_suppresses_nothing(api: Api) -> None:
    pk = await processing(api, n=2)
    lease = await store.acquire_lease(pk, "w", TTL)
    assert lease is not None
    phones = await Message.filter(campaign_id=pk).values_list("phone", flat=True)
    await opt_out(api.principal.workspace_id, *(str(p) for p in phones))
    await expire(pk)
    assert await store.claim(lease, 5) == []
    assert await statuses(pk) == {"PENDING": 2}
    await assert_consistent(pk)


async def test_a_send_answered_131050_fails_and_opts_the_phone_out(api: Api) -> None:
    pk = await processing(api, n=3)
    lease = await store.acquire_lease(pk, "w", TTL)
    assert lease is not None
    a, b, c = await store.claim(lease, 3)
    written = await store.record(
        lease,
        [
            Recorded(a.id, RecordedStatus.FAILED, None, "131050", "Unable to deliver: stopped marketing"),
            Recorded(b.id, RecordedStatus.FAILED, None, "131047", "Re-engagement message"),
            *sent(lease, [c.id]),
        ],
    )
    assert (written.sent, written.failed) == (1, 2)
    found = await OptOut.filter(workspace_id=api.principal.workspace_id).values_list("phone", "source")
    assert found == [(a.phone, OptOutSource.ERROR_131050)]
    window = await Message.get(id=b.id)
    assert window.error_message == failure_text("131047", "Re-engagement message")
    await assert_consistent(pk)


async def test_131049_waits_hours_instead_of_failing_and_claims_skip_it_until_then(api: Api) -> None:
    pk = await processing(api, n=2)
    lease = await store.acquire_lease(pk, "w", TTL)
    assert lease is not None
    limited, other = await store.claim(lease, 2)
    before = datetime.now(UTC)
    written = await store.record(
        lease,
        [
            Recorded(limited.id, RecordedStatus.FAILED, None, MARKETING_LIMIT, "healthy ecosystem"),
            *sent(lease, [other.id]),
        ],
    )
    assert (written.sent, written.failed) == (1, 0)  # waiting is not failing
    row = await Message.get(id=limited.id)
    assert (row.status, row.error_code, row.deferrals) == ("PENDING", MARKETING_LIMIT, 1)
    assert row.not_before is not None and timedelta(minutes=59) < row.not_before - before <= timedelta(
        hours=1, seconds=5
    )
    assert row.error_message is not None and "retried at" in row.error_message
    assert await store.claim(lease, 5) == []
    assert (await Campaign.get(id=pk)).next_send_at is None  # noted when asked what is left, below
    left = await store.remaining(pk)
    assert (left.pending, left.waiting, left.unresolved) == (0, 1, 1)  # not complete: it waits
    campaign = await Campaign.get(id=pk)
    assert campaign.next_send_at is not None and abs(campaign.next_send_at - row.not_before) < timedelta(seconds=1)
    assert campaign.status_reason is not None and "for 1 recipient: WhatsApp" in campaign.status_reason
    # its time comes (here: moved to the past): claimed again, and the note is cleared by the next run
    await Message.filter(id=limited.id).update(not_before=datetime.now(UTC) - timedelta(seconds=1))
    left = await store.remaining(pk)
    assert (left.pending, left.waiting) == (1, 0)
    await store.release_lease(lease)
    again = await store.acquire_lease(pk, "w2", TTL)
    assert again is not None
    campaign = await Campaign.get(id=pk)
    assert (campaign.next_send_at, campaign.status_reason) == (None, None)
    (claimed,) = await store.claim(again, 5)
    assert claimed.id == limited.id
    assert (await Message.get(id=limited.id)).not_before is None
    await assert_consistent(pk)


async def test_131049_fails_once_the_schedule_is_spent(api: Api) -> None:
    pk = await processing(api, n=1)
    lease = await store.acquire_lease(pk, "w", TTL)
    assert lease is not None
    (message,) = await store.claim(lease, 1)
    await Message.filter(id=message.id).update(deferrals=len(DEFERRAL_SCHEDULE_S))
    written = await store.record(lease, [Recorded(message.id, RecordedStatus.FAILED, None, MARKETING_LIMIT, "again")])
    assert written.failed == 1
    row = await Message.get(id=message.id)
    assert (row.status, row.error_code, row.not_before) == ("FAILED", MARKETING_LIMIT, None)
    await assert_consistent(pk)


async def test_a_status_change_ends_what_was_noted_about_waiting(api: Api) -> None:
    pk = await processing(api, n=1)
    lease = await store.acquire_lease(pk, "w", TTL)
    assert lease is not None
    (message,) = await store.claim(lease, 1)
    await store.record(lease, [Recorded(message.id, RecordedStatus.FAILED, None, MARKETING_LIMIT, None)])
    assert await store.claim(lease, 1) == []
    assert (await store.remaining(pk)).waiting == 1  # all it has left waits: noted
    assert (await Campaign.get(id=pk)).next_send_at is not None
    await apply_system_action(pk, Action.AUTO_PAUSE, actor="test", reason="paused for the test")
    campaign = await Campaign.get(id=pk)
    assert (campaign.status, campaign.next_send_at, campaign.status_reason) == (
        CampaignStatus.PAUSED,
        None,
        "paused for the test",
    )
    await assert_consistent(pk)


async def test_messages_that_wait_do_not_hide_an_opted_out_one_behind_them(api: Api) -> None:
    pk = await processing(api, n=3)
    rows = await Message.filter(campaign_id=pk).order_by("id").values_list("id", "phone")
    await Message.filter(id=rows[0][0]).update(not_before=datetime.now(UTC) + timedelta(hours=1))
    await opt_out(api.principal.workspace_id, rows[1][1])
    lease = await store.acquire_lease(pk, "w", TTL)
    assert lease is not None
    # the claim's window skips what waits, and so does the suppression's
    assert [c.id for c in await store.claim(lease, 1)] == [rows[2][0]]
    assert (await Message.get(id=rows[1][0])).error_code == OPTED_OUT_CODE
    left = await store.remaining(pk)
    assert (left.pending, left.waiting) == (0, 1)
    await assert_consistent(pk)
