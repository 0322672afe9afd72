"""jobs/inflight.py: call slots up to the concurrency; a stop never waits for a hung
call (no slot, and the drain timeout counts from the stop); while the run goes on,
settling waits for every call. Real tasks and timers, no I/O."""

from __future__ import annotations

import asyncio
import time

from jobs.inflight import InFlight
from jobs.run_config import RunEnded, RunStop
from tests.waiting import until


async def hold(inflight: InFlight, gate: asyncio.Event, done: list[int]) -> None:
    """A call as a run makes it: holds its slot until it answers, then hands it back."""
    try:
        await gate.wait()
        done.append(1)
    finally:
        inflight.release()


async def filled(
    concurrency: int, stop: RunStop, drain_timeout: float = 5.0
) -> tuple[InFlight, asyncio.Event, list[int]]:
    """Every slot taken by a call that answers once the returned gate is set."""
    inflight, gate = InFlight(concurrency, stop, drain_timeout), asyncio.Event()
    done: list[int] = []
    for _ in range(concurrency):
        assert await inflight.slot()
        inflight.start(hold(inflight, gate, done))
    return inflight, gate, done


async def test_a_slot_waits_for_a_call_to_hand_one_back() -> None:
    inflight, gate, done = await filled(2, RunStop())
    waiting = asyncio.create_task(inflight.slot())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # both slots are held
    gate.set()
    assert await asyncio.wait_for(waiting, 1) is True
    assert len(done) == 2
    inflight.release()


async def test_once_stopped_no_slot_is_waited_for_behind_hung_calls() -> None:
    stop = RunStop()
    inflight, gate, _ = await filled(3, stop)
    waiting = asyncio.create_task(inflight.slot())
    await asyncio.sleep(0.01)
    stop.set(RunEnded.PAUSED)
    assert await asyncio.wait_for(waiting, 1) is False
    gate.set()
    await inflight.settle()


async def test_settle_waits_for_every_call_while_the_run_goes_on() -> None:
    inflight, gate, done = await filled(5, RunStop())
    settling = asyncio.create_task(inflight.settle())
    await asyncio.sleep(0.02)
    assert not settling.done()
    gate.set()
    await asyncio.wait_for(settling, 1)
    assert len(done) == 5


async def test_a_stop_bounds_settling_by_the_drain_timeout_counted_from_the_stop() -> None:
    stop = RunStop()
    inflight, gate, done = await filled(4, stop, drain_timeout=0.2)
    settling = asyncio.create_task(inflight.settle())
    await asyncio.sleep(0.05)  # settling for a while before the stop: that time is not the drain's
    stop.set(RunEnded.SHUTDOWN)
    await asyncio.wait_for(settling, 2)
    assert stop.at is not None
    waited = time.monotonic() - stop.at
    assert 0.2 <= waited < 0.5  # the drain timeout from the stop, then it gives up on the hung calls
    assert done == []
    started = time.monotonic()
    await inflight.settle()  # the drain time is spent: a later settle returns at once
    assert time.monotonic() - started < 0.1
    gate.set()
    await until(lambda: len(done) == 4, what="the calls answered")


async def test_quiet_waits_for_the_calls_started_but_no_longer_than_asked() -> None:
    inflight, gate, done = await filled(2, RunStop())
    started = time.monotonic()
    await inflight.quiet(within=0.05)
    assert 0.05 <= time.monotonic() - started < 0.5 and done == []
    gate.set()
    await inflight.quiet(within=1)
    assert len(done) == 2
