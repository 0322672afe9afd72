"""Keeping a campaign run's lease: renewed every `renew_every`, and the proof of it
(domain/lease.py) the run checks before each provider call.

A renewal proves the lease only from the moment it was sent, and one that hangs is
abandoned when the proof it could extend has run out: meanwhile the send path refuses
to start calls on its own (the proof lapses). A pause or cancel that never reached the
worker by Redis is seen here at the latest: the renewal fails under that status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from domain.lease import LeaseProof, LeaseTimes
from domain.sending import Counts, Lease, SendingStore
from jobs.run_config import RunStop

log = logging.getLogger("campaigns.sender")


class LeaseRenewal:
    """The lease of one run, its proof, and the loop renewing it."""

    def __init__(
        self,
        store: SendingStore,
        lease: Lease,
        times: LeaseTimes,
        *,
        proven_at: tuple[float, float] | None,
        on_counts: Callable[[Counts], Awaitable[None]],
        on_lost: Callable[[], None],
    ) -> None:
        """`proven_at` is the (monotonic, wall) time the acquisition was sent (now if
        None); `on_counts` gets the campaign's counters after each renewal; `on_lost`
        is called once the lease is surely gone, and the loop then ends."""
        self.store = store
        self.lease = lease
        self.times = times
        self._on_counts = on_counts
        self._on_lost = on_lost
        self.proof = LeaseProof(times.proof)
        mono, wall = proven_at or (time.monotonic(), time.time())
        self.proof.renewed(mono, wall)  # the acquisition proves the lease from before it was sent
        self._proven = asyncio.Event()  # set by every renewal that proves the lease
        self._proven.set()

    def valid(self) -> bool:
        """Whether the lease is proven right now (no await between this and a call)."""
        return self.proof.valid(time.monotonic(), time.time())

    async def wait_proven(self, stop: RunStop) -> bool:
        """Wait until the lease is proven again (a renewal got through); False if the run
        is stopped meanwhile (its stop calls `wake()`)."""
        while not (stop.reason is None and self.valid()):
            if stop.reason is not None:
                return False
            self._proven.clear()
            try:
                async with asyncio.timeout(self.times.renew_every):
                    await self._proven.wait()
            except TimeoutError:
                pass
        return True

    def wake(self) -> None:
        """Wake `wait_proven` to look again (the run was stopped)."""
        self._proven.set()

    async def loop(self) -> None:
        """Renew until cancelled, or until the lease is lost."""
        times = self.times
        while True:
            await asyncio.sleep(times.renew_every)
            mono, wall = time.monotonic(), time.time()
            try:
                async with asyncio.timeout(max(times.renew_every, self.proof.remaining(mono))):
                    counts = await self.store.renew_lease(self.lease, times.ttl)
            except Exception as exc:
                log.warning("renewing the lease of campaign %s failed: %r", self.lease.campaign.id, exc)
                if self.proof.remaining(time.monotonic()) < -times.ttl:
                    self._on_lost()  # surely expired by now: another run may have it
                    return
                continue
            if counts is None:
                self._on_lost()
                return
            self.proof.renewed(mono, wall)
            self._proven.set()
            await self._on_counts(counts)
