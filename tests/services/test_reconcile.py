"""services.reconcile on the real database, beyond what tests/services/test_sending_store.py
covers through the sending store: the sweep's own path (no lease) for campaigns that can
still send, a lease that is no longer the campaign's, the window's edge, a doubt the run
recorded kept as it is, and which campaigns `unleased_campaigns` hands to the sweep.
Every test that changes messages ends with the counters equal to a GROUP BY."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.lifecycle import Action, CampaignStatus
from domain.sending import IN_DOUBT_CODE, InDoubtPolicy, Lease, Reconciled, Recorded, RecordedStatus
from models import Campaign, Message
from services.reconcile import IN_DOUBT_TEXT, reconcile_campaign, unleased_campaigns
from services.transitions import apply_system_action
from tests.conftest import Api
from tests.services.test_receipts import assert_consistent
from tests.services.test_sending_store import TTL, expire, processing, statuses, store

S = CampaignStatus


async def dead_run(api: Api, n: int, claimed: int) -> tuple[int, Lease, list[int]]:
    """A PROCESSING campaign whose run claimed `claimed` of its `n` messages and died."""
    pk = await processing(api, n=n)
    lease = await store.acquire_lease(pk, "dead", TTL)
    assert lease is not None
    ids = [c.id for c in await store.claim(lease, claimed)]
    return pk, lease, ids


async def mine(pk: int) -> list[int]:
    return [c.id for c in await unleased_campaigns(quiet_for=0) if c.id == pk]


@pytest.mark.parametrize(
    ("status", "action"), [(S.PAUSED, Action.AUTO_PAUSE), (S.FAILED, Action.FAIL)], ids=["paused", "failed"]
)
async def test_the_sweep_resends_a_dead_runs_messages_once_receipts_flowed_after_their_doubt(
    api: Api, status: CampaignStatus, action: Action
) -> None:
    """A paused or failed campaign can send again (resume, retry): what the provider
    never took goes back to PENDING, not to FAILED, once statuses are seen reaching us."""
    pk, _, ids = await dead_run(api, n=5, claimed=3)
    assert await apply_system_action(pk, action, actor="worker", reason="stopped") is not None
    await expire(pk)
    t0 = datetime.now(UTC)
    assert await reconcile_campaign(pk, 60, InDoubtPolicy.RESEND, now=t0) == Reconciled()  # in doubt from t0
    await Campaign.filter(id=pk).update(last_receipt_at=t0 + timedelta(seconds=1))  # statuses arrive meanwhile
    done = await reconcile_campaign(pk, 60, InDoubtPolicy.RESEND, now=t0 + timedelta(seconds=61))
    assert (done.resent, done.failed) == (3, 0)
    rows = await Message.filter(id__in=ids).values_list("status", "doubt_at", "error_code", "error_message")
    assert set(rows) == {("PENDING", None, None, None)}
    assert await statuses(pk) == {"PENDING": 5}
    assert (await assert_consistent(pk))["pending"] == 5  # SENDING and PENDING both count as pending
    assert (await Campaign.get(id=pk)).status is status


async def test_the_fail_policy_fails_in_doubt_messages_even_where_receipts_flow(api: Api) -> None:
    pk, _, ids = await dead_run(api, n=4, claimed=2)
    await expire(pk)
    t0 = datetime.now(UTC)
    await reconcile_campaign(pk, 60, InDoubtPolicy.FAIL, now=t0)
    await Campaign.filter(id=pk).update(last_receipt_at=t0 + timedelta(seconds=1))
    later = t0 + timedelta(seconds=61)
    done = await reconcile_campaign(pk, 60, InDoubtPolicy.FAIL, now=later)
    assert (done.resent, done.failed) == (0, 2)
    for row in await Message.filter(id__in=ids):
        assert (row.status, row.error_code, row.error_message, row.doubt_at) == (
            "FAILED",
            IN_DOUBT_CODE,
            IN_DOUBT_TEXT,
            None,
        )
        assert row.failed_at == later
    assert await reconcile_campaign(pk, 60, InDoubtPolicy.FAIL, now=later) == Reconciled()  # nothing left
    counters = await assert_consistent(pk)
    assert (counters["pending"], counters["failed"]) == (2, 2)


async def test_the_sweep_keeps_the_doubt_time_a_run_recorded_and_starts_the_others_now(api: Api) -> None:
    """Rows the run itself left in doubt an hour ago are past the window at once; the
    dead run's calls that were simply in flight start their window at this sweep."""
    pk, lease, ids = await dead_run(api, n=6, claimed=4)
    await store.record(lease, [Recorded(i, RecordedStatus.IN_DOUBT, error_message="timeout") for i in ids[:2]])
    await Message.filter(id__in=ids[:2]).update(doubt_at=datetime.now(UTC) - timedelta(hours=1))
    await expire(pk)
    done = await reconcile_campaign(pk, 600, InDoubtPolicy.FAIL)
    assert (done.resent, done.failed) == (0, 2)
    rows = dict(await Message.filter(id__in=ids).values_list("id", "status"))
    assert [rows[i] for i in ids] == ["FAILED", "FAILED", "SENDING", "SENDING"]
    assert all(at is not None for at in await Message.filter(id__in=ids[2:]).values_list("doubt_at", flat=True))
    await assert_consistent(pk)


async def test_the_window_includes_its_edge(api: Api) -> None:
    pk, _, ids = await dead_run(api, n=2, claimed=2)
    await expire(pk)
    since = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)  # whole seconds: stored without a fraction
    await Message.filter(id__in=ids).update(doubt_at=since)
    just_before = since + timedelta(seconds=600) - timedelta(microseconds=1)
    assert await reconcile_campaign(pk, 600, InDoubtPolicy.FAIL, now=just_before) == Reconciled()
    assert await statuses(pk) == {"SENDING": 2}
    done = await reconcile_campaign(pk, 600, InDoubtPolicy.FAIL, now=since + timedelta(seconds=600))
    assert (done.resent, done.failed) == (0, 2)
    await assert_consistent(pk)


async def test_a_lease_that_is_no_longer_the_campaigns_reconciles_nothing(api: Api) -> None:
    pk, old, ids = await dead_run(api, n=4, claimed=3)
    await store.record(old, [Recorded(i, RecordedStatus.IN_DOUBT) for i in ids])
    await expire(pk)
    new = await store.acquire_lease(pk, "b", TTL)
    assert new is not None
    assert await reconcile_campaign(pk, 0, InDoubtPolicy.FAIL, lease=old) == Reconciled()  # an older fence
    impostor = Lease(new.campaign, "somebody-else", new.fence, new.counts)
    assert await reconcile_campaign(pk, 0, InDoubtPolicy.FAIL, lease=impostor) == Reconciled()  # another owner
    assert await reconcile_campaign(pk, 0, InDoubtPolicy.FAIL) == Reconciled()  # a live lease: no sweep either
    assert await statuses(pk) == {"SENDING": 3, "PENDING": 1}
    done = await reconcile_campaign(pk, 0, InDoubtPolicy.FAIL, lease=new)
    assert (done.resent, done.failed) == (0, 3)
    await assert_consistent(pk)


async def test_reconciling_a_campaign_that_does_not_exist_does_nothing(api: Api) -> None:
    assert await reconcile_campaign(987_654_321, 0, InDoubtPolicy.RESEND) == Reconciled()


async def test_unleased_campaigns_are_the_active_ones_nobody_leases_with_their_state(api: Api) -> None:
    queued = await processing(api, n=2, status=S.QUEUED)  # never leased
    leased = await processing(api, n=2)
    assert await store.acquire_lease(leased, "alive", TTL) is not None
    lapsed = await processing(api, n=2)
    lease = await store.acquire_lease(lapsed, "gone", TTL)
    assert lease is not None
    await expire(lapsed)
    draft = await processing(api, n=2, status=S.DRAFT)
    found = {c.id: c for c in await unleased_campaigns(quiet_for=0) if c.id in (queued, leased, lapsed, draft)}
    assert sorted(found) == [queued, lapsed]
    for pk, status, fence in ((queued, S.QUEUED, 0), (lapsed, S.PROCESSING, lease.fence)):
        campaign = await Campaign.get(id=pk)
        got = found[pk]
        assert (got.status, got.version, got.fence) == (status, campaign.version, fence)
    ids = [c.id for c in await unleased_campaigns(quiet_for=0)]
    assert ids == sorted(ids)


async def test_a_stopped_campaign_is_unleased_only_while_it_has_sending_messages(api: Api) -> None:
    pk, _, _ = await dead_run(api, n=3, claimed=2)
    assert await apply_system_action(pk, Action.AUTO_PAUSE, actor="guard") is not None
    await expire(pk)
    assert await mine(pk) == [pk]
    t0 = datetime.now(UTC)
    await reconcile_campaign(pk, 60, InDoubtPolicy.FAIL, now=t0)
    assert await mine(pk) == [pk]  # in doubt, still SENDING
    assert (await reconcile_campaign(pk, 60, InDoubtPolicy.FAIL, now=t0 + timedelta(seconds=60))).failed == 2
    assert await mine(pk) == []  # nothing SENDING: a paused campaign is left alone
    await assert_consistent(pk)


async def test_a_campaign_is_settled_once_it_has_not_changed_for_the_quiet_period(api: Api) -> None:
    pk = await processing(api, n=1, status=S.QUEUED)
    [fresh] = [c for c in await unleased_campaigns(quiet_for=60) if c.id == pk]
    assert fresh.settled is False  # its transition's own job may still be on its way
    later = datetime.now(UTC) + timedelta(seconds=61)
    [quiet] = [c for c in await unleased_campaigns(quiet_for=60, now=later) if c.id == pk]
    assert quiet.settled is True
