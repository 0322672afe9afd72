"""The daily messaging limit over the real database: the sending store's claim gated by
services/daily_limit.py. Each test has a sender number of its own (the count is per
number and the database is shared), TIER_50 keeps them small, and the business clock
(`business_clock`) crosses the 24 hours."""

from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import ModuleType

from domain.ids import expect_id
from domain.lifecycle import Action
from domain.senders import LIMIT_MARGIN, LIMIT_WINDOW, DailyLimit, Tier, stops_counting
from domain.sending import Claimed, Lease, Recorded, RecordedStatus
from domain.waiting import WaitReason
from models import Campaign, DailyContact, Message
from runtime import clock
from services import daily_limit
from services.sending_store import SqlSendingStore
from services.transitions import apply_action
from tests.conftest import Api, phone
from tests.services.test_receipts import assert_consistent

TTL = 15.0
store = SqlSendingStore()
_numbers = itertools.count(random.randrange(10**8))
#: a day and the margin, and a second: everything counted before it has stopped counting
A_DAY_LATER = (LIMIT_WINDOW + LIMIT_MARGIN).total_seconds() + 1


def sender_key() -> str:
    """A phone number id of the test's own."""
    return f"71{next(_numbers):013d}"


async def leased(api: Api, phones: list[str], key: str, tier: Tier = Tier.TIER_50) -> Lease:
    """A PROCESSING campaign to `phones` under a lease, sending from `key` with `tier`,
    as the worker hands it to its run."""
    view = await api.create_campaign()
    added = await api.add(view["id"], *[(p, {"name": "Ann"}) for p in phones])
    assert added["added"] == len(phones), added
    pk = expect_id(view["id"], "Campaign")
    await apply_action(api.principal, pk, Action.SEND_NOW)
    lease = await store.acquire_lease(pk, f"worker-{pk}", TTL)
    assert lease is not None
    return replace(lease, campaign=replace(lease.campaign, daily_limit=DailyLimit(key, tier)))


async def claim_all(lease: Lease, batch: int = 20) -> list[Claimed]:
    """Claims until one comes back empty, as a run does."""
    claimed: list[Claimed] = []
    after = 0
    while batch_claimed := await store.claim(lease, batch, after):
        claimed += batch_claimed
        after = batch_claimed[-1].id
    return claimed


async def waiting(pk: int) -> list[tuple[datetime | None, str | None]]:
    rows = (
        await Message.filter(campaign_id=pk, status="PENDING").order_by("id").values_list("not_before", "wait_reason")
    )
    return [(at, reason) for at, reason in rows]


async def counted(key: str) -> int:
    return (await daily_limit.usage(DailyLimit(key, Tier.TIER_50))).used


async def test_a_sender_claims_new_phones_up_to_its_limit_and_the_rest_waits_for_a_slot(
    api: Api, business_clock: ModuleType
) -> None:
    key = sender_key()
    lease = await leased(api, [phone(i) for i in range(60)], key)
    started = business_clock.now()
    claimed = await claim_all(lease, batch=40)
    assert [c.phone for c in claimed] == [phone(i) for i in range(50)]
    assert await store.claim(lease, 40) == []
    left = await waiting(lease.campaign.id)
    assert len(left) == 10 and {reason for _, reason in left} == {WaitReason.DAILY_LIMIT.value}
    frees = {at for at, _ in left}
    assert len(frees) == 1
    (until,) = frees
    assert until is not None
    # when the first of the 50 stops counting: 24 hours and the margin after its claim
    assert stops_counting(started) <= until <= stops_counting(business_clock.now())
    usage = await daily_limit.usage(lease.campaign.daily_limit or DailyLimit(key, Tier.TIER_50))
    assert (usage.tier, usage.limit, usage.used, usage.resets_at) == (Tier.TIER_50, 50, 50, until)
    # once the 50 are sent, all that is left waits: the campaign says why and until when
    await store.record(lease, [Recorded(c.id, RecordedStatus.SENT, f"wamid.{c.id}") for c in claimed])
    rest = await store.remaining(lease.campaign.id)
    assert (rest.pending, rest.sending, rest.waiting) == (0, 0, 10)
    campaign = await Campaign.get(id=lease.campaign.id)
    assert campaign.next_send_at == until
    assert campaign.status_reason is not None and "daily messaging limit" in campaign.status_reason
    await assert_consistent(lease.campaign.id)


async def test_the_window_rolls_with_the_business_clock(api: Api, business_clock: ModuleType) -> None:
    key = sender_key()
    lease = await leased(api, [phone(i) for i in range(60)], key)
    assert len(await claim_all(lease)) == 50
    business_clock.advance(LIMIT_WINDOW.total_seconds())  # a day: the margin still counts them
    assert await claim_all(lease) == []
    business_clock.advance(A_DAY_LATER - LIMIT_WINDOW.total_seconds())
    later = await claim_all(lease)
    assert [c.phone for c in later] == [phone(i) for i in range(50, 60)]
    rows = await Message.filter(id__in=[c.id for c in later]).values_list("not_before", "wait_reason")
    assert set(rows) == {(None, None)}  # claimed: waiting is over for them
    # the 50 of yesterday no longer count, and the claim pruned their rows
    assert await counted(key) == 10
    assert await DailyContact.filter(sender_key=key).count() == 10
    await assert_consistent(lease.campaign.id)


async def test_a_phone_counted_already_does_not_count_again(api: Api, business_clock: ModuleType) -> None:
    key = sender_key()
    first = await leased(api, [phone(i) for i in range(50)], key)
    assert len(await claim_all(first)) == 50
    # half its recipients were messaged today already: those go, the new half waits
    second = await leased(api, [phone(i) for i in range(25, 75)], key)
    claimed = await claim_all(second)
    assert sorted(c.phone for c in claimed) == [phone(i) for i in range(25, 50)]
    left = await Message.filter(campaign_id=second.campaign.id, status="PENDING").values_list("phone", "wait_reason")
    assert sorted(p for p, _ in left) == [phone(i) for i in range(50, 75)]
    assert {reason for _, reason in left} == {WaitReason.DAILY_LIMIT.value}
    assert await counted(key) == 50


async def test_two_campaigns_of_one_sender_claiming_at_once_share_the_limit(
    api: Api, business_clock: ModuleType
) -> None:
    """Two workers, two campaigns, one sender: claims race (concurrent transactions on
    PostgreSQL) and together take exactly the limit."""
    key = sender_key()
    one = await leased(api, [phone(i) for i in range(40)], key)
    two = await leased(api, [phone(100 + i) for i in range(40)], key)
    cursors = {one.campaign.id: 0, two.campaign.id: 0}
    claimed: list[Claimed] = []
    while True:
        batches = await asyncio.gather(*(store.claim(lease, 7, cursors[lease.campaign.id]) for lease in (one, two)))
        if not any(batches):
            break
        for lease, batch in zip((one, two), batches, strict=True):
            if batch:
                cursors[lease.campaign.id] = batch[-1].id
            claimed += batch
    assert len(claimed) == 50 and len({c.phone for c in claimed}) == 50
    assert await counted(key) == 50
    left = [*(await waiting(one.campaign.id)), *(await waiting(two.campaign.id))]
    assert len(left) == 30 and {reason for _, reason in left} == {WaitReason.DAILY_LIMIT.value}


async def test_a_message_waiting_longer_keeps_its_time_and_reason(api: Api, business_clock: ModuleType) -> None:
    key = sender_key()
    lease = await leased(api, [phone(i) for i in range(55)], key)
    later = clock.now() + timedelta(days=3)
    last = await Message.filter(campaign_id=lease.campaign.id).order_by("-id").first()
    assert last is not None
    await Message.filter(id=last.id).update(not_before=later, wait_reason=WaitReason.WINDOW.value)
    assert len(await claim_all(lease)) == 50
    kept = await Message.get(id=last.id)
    assert (kept.not_before, kept.wait_reason) == (later, WaitReason.WINDOW.value)
    assert [reason for _, reason in await waiting(lease.campaign.id)].count(WaitReason.DAILY_LIMIT.value) == 4


async def test_a_claim_without_the_lease_counts_nobody(api: Api, business_clock: ModuleType) -> None:
    key = sender_key()
    lease = await leased(api, [phone(i) for i in range(5)], key)
    await Campaign.filter(id=lease.campaign.id).update(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert await store.claim(lease, 5) == []
    assert await DailyContact.filter(sender_key=key).count() == 0


async def test_an_unlimited_sender_claims_as_ever_and_counts_nobody(api: Api, business_clock: ModuleType) -> None:
    key = sender_key()
    lease = await leased(api, [phone(i) for i in range(60)], key, Tier.TIER_UNLIMITED)
    assert len(await claim_all(lease)) == 60
    assert await DailyContact.filter(sender_key=key).count() == 0
    usage = await daily_limit.usage(DailyLimit(key, Tier.TIER_UNLIMITED))
    assert (usage.limit, usage.used, usage.resets_at) == (None, 0, None)
    # a campaign whose sender is not known to the store (no limit given) also goes unlimited
    plain = await leased(api, [phone(i) for i in range(3)], key)
    plain = replace(plain, campaign=replace(plain.campaign, daily_limit=None))
    assert len(await claim_all(plain)) == 3


async def test_recipients_noted_ahead_of_a_clock_moved_back_do_not_count(api: Api, business_clock: ModuleType) -> None:
    """A test (or a demo) that moved the business clock ahead and back leaves rows in
    its future: they do not hold the limit for a real day."""
    key = sender_key()
    business_clock.advance(3 * 24 * 3600)
    ahead = await leased(api, [phone(i) for i in range(50)], key)
    assert len(await claim_all(ahead)) == 50
    business_clock.set_offset(0)
    assert await counted(key) == 0
    later = await leased(api, [phone(100 + i) for i in range(10)], key)
    assert len(await claim_all(later)) == 10
