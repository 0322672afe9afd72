"""jobs/run_config.py: a claim holds what can start within the claim horizon at the
run's rate; a run's stop keeps its first reason and the time of it, and ends the
waits of whoever sleeps on it. No I/O."""

from __future__ import annotations

import asyncio
import time

from jobs.run_config import RunConfig, RunEnded, RunStop
from tests.waiting import until


def test_claims_are_sized_by_the_rate() -> None:
    """Finding 5 of issue 8: at sendRate 2/s a run claimed 500 messages; a crash then
    put all of them in doubt (the run's side: tests/jobs/test_sender.py)."""
    assert RunConfig(concurrency=200, batch_size=500, rate=2).claim_size() == 2
    assert RunConfig(concurrency=200, batch_size=500, rate=300).claim_size() == 300
    assert RunConfig(concurrency=200, batch_size=500, rate=1000).claim_size() == 500
    assert RunConfig(concurrency=200, batch_size=500).claim_size() == 200
    assert RunConfig(rate=0.1).claim_size() == 1  # at least one


def test_a_stop_keeps_its_first_reason_and_when_it_came() -> None:
    stop = RunStop()
    assert (stop.reason, stop.at, stop.event.is_set()) == (None, None, False)
    before = time.monotonic()
    assert stop.set(RunEnded.PAUSED) is True
    at = stop.at
    assert at is not None and before <= at <= time.monotonic() and stop.event.is_set()
    assert stop.set(RunEnded.SHUTDOWN) is False
    assert (stop.reason, stop.at) == (RunEnded.PAUSED, at)


async def test_a_stop_ends_a_sleep_early_and_a_sleep_without_one_lasts() -> None:
    stop = RunStop()
    started = time.monotonic()
    await stop.sleep(0.05)
    assert time.monotonic() - started >= 0.05
    sleeper = asyncio.create_task(stop.sleep(60))
    await asyncio.sleep(0)
    stop.set(RunEnded.CANCELLED)
    await until(sleeper.done, timeout=1, what="the sleep ended by the stop")
    started = time.monotonic()
    await stop.sleep(60)  # once stopped, a sleep returns at once
    assert time.monotonic() - started < 1
