"""jobs/outcomes.py: outcomes are written in bulk under the run's lease (at the tick,
or at once when 1,000 wait); a failed write keeps them for the next; the last ones are
retried for the drain timeout, then left in doubt with an error in the log. Over the
in-memory store (tests/jobs/memory.py)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from domain.messages import MessageStatus as M
from domain.sending import Claimed, Recorded, RecordedStatus, Written
from jobs.outcomes import FLUSH_AT, OutcomeBuffer
from tests.jobs.memory import MemoryStore
from tests.waiting import until


async def buffer_over(
    n: int, *, flush_every: float = 60.0, drain_timeout: float = 1.0
) -> tuple[MemoryStore, list[Claimed], OutcomeBuffer, list[Written]]:
    """A store with `n` messages claimed under a lease, and a buffer writing under it."""
    store = MemoryStore(n=n)
    lease = await store.acquire_lease(store.campaign.id, "me", 60)
    assert lease is not None
    claimed = await store.claim(lease, n)
    written: list[Written] = []

    async def on_written(w: Written) -> None:
        written.append(w)

    buffer = OutcomeBuffer(store, lease, flush_every=flush_every, drain_timeout=drain_timeout, on_written=on_written)
    return store, claimed, buffer, written


def sent(message: Claimed) -> Recorded:
    return Recorded(message.id, RecordedStatus.SENT, f"wamid.{message.id}", send_round=message.send_round)


async def test_the_loop_writes_what_is_buffered_in_one_batch_per_tick() -> None:
    store, claimed, buffer, written = await buffer_over(20, flush_every=0.01)
    loop = asyncio.create_task(buffer.loop())
    try:
        for message in claimed:
            buffer.record(sent(message))
        await until(lambda: store.by_status() == {M.SENT: 20}, timeout=2, what="the outcomes written")
        assert [w.sent for w in written] == [20]  # recorded between two ticks: one batch
    finally:
        buffer.finish()
        await asyncio.wait_for(loop, 1)


async def test_a_thousand_outcomes_waiting_are_written_at_once() -> None:
    _, claimed, buffer, written = await buffer_over(FLUSH_AT)  # a tick of a minute
    loop = asyncio.create_task(buffer.loop())
    try:
        for message in claimed[:-1]:
            buffer.record(sent(message))
        await asyncio.sleep(0.02)
        assert written == []
        buffer.record(sent(claimed[-1]))
        await until(lambda: written, timeout=1, what="the batch of 1,000 written before the tick")
        assert written[0].sent == FLUSH_AT
    finally:
        buffer.finish()
        await asyncio.wait_for(loop, 1)


async def test_a_failed_write_keeps_the_outcomes_for_the_next_one() -> None:
    store, claimed, buffer, written = await buffer_over(10)
    store.record_fails = 1
    for message in claimed[:6]:
        buffer.record(sent(message))
    assert await buffer.flush() is False
    assert store.by_status() == {M.SENDING: 10} and written == []
    for message in claimed[6:]:
        buffer.record(sent(message))
    assert await buffer.flush() is True
    assert store.by_status() == {M.SENT: 10} and [w.sent for w in written] == [10]
    assert await buffer.flush() is True  # nothing left: no write
    assert len(written) == 1


async def test_a_message_given_back_is_pending_again_without_the_attempt_it_never_made() -> None:
    store, claimed, buffer, _ = await buffer_over(2)
    buffer.give_back(claimed[0], calls=0)
    buffer.give_back(claimed[1], calls=2)  # two calls, e.g. a fatal answer on the second
    assert await buffer.flush()
    assert store.by_status() == {M.PENDING: 2}
    assert (store.rows[claimed[0].id].attempts, store.rows[claimed[1].id].attempts) == (0, 2)


async def test_finish_ends_the_loop_after_writing_what_is_there() -> None:
    store, claimed, buffer, _ = await buffer_over(3)
    loop = asyncio.create_task(buffer.loop())
    await asyncio.sleep(0)
    for message in claimed:
        buffer.record(sent(message))
    buffer.finish()
    await asyncio.wait_for(loop, 1)
    assert store.by_status() == {M.SENT: 3}


async def test_the_final_flush_retries_for_the_drain_timeout_then_logs_what_it_could_not_write(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="campaigns.sender")
    store, claimed, buffer, _ = await buffer_over(4, drain_timeout=0.3)
    for message in claimed:
        buffer.record(sent(message))
    store.record_fails = 1  # the database is back for the second try
    await buffer.final_flush()
    assert store.by_status() == {M.SENT: 4}
    store.record_fails = 1_000  # away for good
    for message in claimed:
        buffer.record(sent(message))
    started = time.monotonic()
    await buffer.final_flush()
    assert 0.3 <= time.monotonic() - started < 2
    given_up = [r for r in caplog.records if "could not be written" in r.getMessage()]
    assert [(r.name, r.levelno, r.getMessage()) for r in given_up] == [
        ("campaigns.sender", logging.ERROR, "campaign 1: 4 outcomes could not be written")
    ]
