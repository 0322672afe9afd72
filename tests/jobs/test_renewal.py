"""jobs/renewal.py: the lease is renewed every `renew_every`, each renewal proves it
from the moment it was sent and hands the counters on; a lease taken over ends the
loop; a renewal that hangs is abandoned when the proof runs out, and a lease not
renewed for a TTL past its proof is lost. Over the in-memory store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from domain.lease import LeaseTimes
from domain.lifecycle import CampaignStatus
from domain.sending import Counts, Lease
from jobs.renewal import LeaseRenewal
from jobs.run_config import RunEnded, RunStop
from tests.jobs.memory import MemoryStore
from tests.waiting import until

FAST = LeaseTimes(ttl=0.5, renew_every=0.02, proof=0.1)


class Renewing:
    """A renewal of a lease on the store, what it reported, and its loop's task."""

    def __init__(self, store: MemoryStore, lease: Lease) -> None:
        self.store = store
        self.counts: list[Counts] = []
        self.lost: list[float] = []  # when on_lost was called
        self.renewal = LeaseRenewal(
            store,
            lease,
            FAST,
            proven_at=None,
            on_counts=self._on_counts,
            on_lost=lambda: self.lost.append(time.monotonic()),
        )
        self.task = asyncio.create_task(self.renewal.loop())

    async def _on_counts(self, counts: Counts) -> None:
        self.counts.append(counts)


@pytest.fixture
async def renewing() -> AsyncIterator[Callable[[MemoryStore, Lease], Renewing]]:
    """Starts renewals; cancels their loops after the test."""
    made: list[Renewing] = []

    def make(store: MemoryStore, lease: Lease) -> Renewing:
        made.append(Renewing(store, lease))
        return made[-1]

    yield make
    for it in made:
        it.task.cancel()
        await asyncio.gather(it.task, return_exceptions=True)


async def leased() -> tuple[MemoryStore, Lease]:
    store = MemoryStore(n=1)
    lease = await store.acquire_lease(store.campaign.id, "me", FAST.ttl)
    assert lease is not None
    return store, lease


async def test_each_renewal_extends_the_proof_and_hands_the_counters_on(
    renewing: Callable[[MemoryStore, Lease], Renewing],
) -> None:
    it = renewing(*await leased())
    past = time.monotonic() + FAST.proof * 4  # four proofs on: only renewals keep it valid
    await until(lambda: time.monotonic() > past and len(it.counts) >= 10, timeout=3, what="renewals")
    assert it.renewal.valid()
    assert it.counts[-1] == Counts(CampaignStatus.PROCESSING, 0, 0)
    assert it.lost == [] and not it.task.done()


async def test_a_lease_taken_over_is_lost_and_the_loop_ends(renewing: Callable[[MemoryStore, Lease], Renewing]) -> None:
    it = renewing(*await leased())
    await until(lambda: it.counts, timeout=1, what="a first renewal")
    it.store.take_over()
    await asyncio.wait_for(it.task, 1)
    assert len(it.lost) == 1


async def test_a_hanging_renewal_lets_the_proof_lapse_and_the_lease_is_lost_a_ttl_later(
    renewing: Callable[[MemoryStore, Lease], Renewing],
) -> None:
    store, lease = await leased()
    hang = asyncio.Event()
    proven: list[float] = []

    async def renew() -> None:
        if store.renewals > 2:
            await hang.wait()  # the database stops answering
        proven.append(time.monotonic())

    store.renew_hook = renew
    it = renewing(store, lease)
    await until(lambda: not it.renewal.valid(), timeout=2, what="the proof lapsed")
    lapsed = time.monotonic()
    assert lapsed < proven[-1] + FAST.proof + 0.1  # the proof of the last renewal that got through
    await asyncio.wait_for(it.task, 3)
    assert len(it.lost) == 1 and it.lost[0] > proven[-1] + FAST.proof + FAST.ttl - 0.01
    hang.set()


async def test_waiting_for_the_proof_ends_with_a_renewal_or_with_the_stop(
    renewing: Callable[[MemoryStore, Lease], Renewing],
) -> None:
    store, lease = await leased()
    hold = asyncio.Event()

    async def renew() -> None:
        if store.renewals > 1:
            await hold.wait()

    store.renew_hook = renew
    it = renewing(store, lease)
    stop = RunStop()
    assert await it.renewal.wait_proven(stop) is True  # proven by the acquisition
    await until(lambda: not it.renewal.valid(), timeout=2, what="the proof lapsed")
    waiting = asyncio.create_task(it.renewal.wait_proven(stop))
    await asyncio.sleep(FAST.renew_every * 2)
    assert not waiting.done()
    hold.set()  # renewals get through again
    assert await asyncio.wait_for(waiting, 1) is True
    hold.clear()
    await until(lambda: not it.renewal.valid(), timeout=2, what="the proof lapsed again")
    waiting = asyncio.create_task(it.renewal.wait_proven(stop))
    await asyncio.sleep(0)
    stop.set(RunEnded.PAUSED)
    it.renewal.wake()
    assert await asyncio.wait_for(waiting, 1) is False
    hold.set()
