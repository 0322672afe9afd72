"""A campaign run's outcomes, buffered and written in bulk: every `flush_every` seconds
(sooner once 1,000 wait, or when asked), each batch in one transaction with its
counters (the store's `record`).

An outcome is never dropped for a failed write: the database is the truth, and losing
an accepted send would leave its message in doubt. A failed batch goes back to the
front of the buffer and is written with the next one; at the end of the run the last
outcomes are retried for the drain timeout, after which what could not be written stays
SENDING in the database, so it is in doubt, not lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from domain.sending import Claimed, Lease, Recorded, RecordedStatus, SendingStore, Written

log = logging.getLogger("campaigns.sender")

#: outcomes waiting that make the flush loop write at once
FLUSH_AT = 1_000


class OutcomeBuffer:
    """The outcomes of one run's calls until they are written under its lease."""

    def __init__(
        self,
        store: SendingStore,
        lease: Lease,
        *,
        flush_every: float,
        drain_timeout: float,
        on_written: Callable[[Written], Awaitable[None]],
    ) -> None:
        """`on_written` is awaited after each batch that was written (live numbers, the
        failure guard)."""
        self.store = store
        self.lease = lease
        self.flush_every = flush_every
        self.drain_timeout = drain_timeout
        self._on_written = on_written
        self._outcomes: list[Recorded] = []
        self._flush_now = asyncio.Event()
        self._closing = False

    def record(self, outcome: Recorded) -> None:
        self._outcomes.append(outcome)
        if len(self._outcomes) >= FLUSH_AT:
            self._flush_now.set()

    def give_back(self, message: Claimed, calls: int) -> None:
        """The message goes back to PENDING (CANCELLED if its campaign was cancelled),
        counting the calls it got."""
        self._outcomes.append(
            Recorded(message.id, RecordedStatus.PENDING, extra_attempts=calls - 1, send_round=message.send_round)
        )

    def flush_soon(self) -> None:
        """Wake the flush loop now instead of at its next tick."""
        self._flush_now.set()

    def finish(self) -> None:
        """Ask the flush loop to end after the write it may be in: cancelling it instead
        could land inside a write and lose that batch (and 3.11's wait_for can swallow
        the cancellation)."""
        self._closing = True
        self._flush_now.set()

    async def loop(self) -> None:
        """Write what is buffered every `flush_every` seconds until `finish()`."""
        while not self._closing:
            try:
                async with asyncio.timeout(self.flush_every):
                    await self._flush_now.wait()
            except TimeoutError:
                pass
            self._flush_now.clear()
            if not await self.flush():
                await asyncio.sleep(0.5)

    async def flush(self) -> bool:
        """Write what is buffered; False if the write failed (the outcomes are kept)."""
        if not self._outcomes:
            return True
        batch, self._outcomes = self._outcomes, []
        try:
            written = await self.store.record(self.lease, batch)
        except Exception:
            log.exception("writing %s outcomes failed; will retry", len(batch))
            self._outcomes[:0] = batch
            return False
        await self._on_written(written)
        return True

    async def final_flush(self) -> None:
        """The last outcomes, retried for the drain timeout if the database is away."""
        deadline = time.monotonic() + self.drain_timeout
        while not await self.flush():
            if time.monotonic() > deadline:
                log.error("campaign %s: %s outcomes could not be written", self.lease.campaign.id, len(self._outcomes))
                return
            await asyncio.sleep(0.5)
