"""runtime/background.py: a component's long-running task, named; stop() cancels it and
waits for its cleanup, is idempotent, raises neither the task's cancellation nor its
crash, but lets the caller's own cancellation through; a crash is logged once, on the
owner's logger, when it happens, and the loop is not restarted."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from runtime.background import Background
from tests.waiting import until

log = logging.getLogger("tests.background")


def task_named(name: str) -> asyncio.Task[object] | None:
    return next((t for t in asyncio.all_tasks() if t.get_name() == name), None)


async def test_the_loop_runs_in_a_named_task_and_stop_waits_for_its_cleanup() -> None:
    ticks, cleaned = [], asyncio.Event()

    async def loop() -> None:
        try:
            while True:
                ticks.append(1)
                await asyncio.sleep(0.001)
        finally:
            await asyncio.sleep(0.01)  # cleanup that awaits: stop() must wait it out
            cleaned.set()

    background = Background("test-named", loop, log)
    background.start()
    await until(lambda: len(ticks) >= 3, what="the loop ticked")
    assert background.running and task_named("test-named") is not None
    await background.stop()
    assert cleaned.is_set() and not background.running and task_named("test-named") is None


async def test_stop_before_start_and_stop_twice_do_nothing() -> None:
    async def loop() -> None:
        await asyncio.Event().wait()

    background = Background("test-idempotent", loop, log)
    await background.stop()
    background.start()
    await background.stop()
    await background.stop()
    assert not background.running


async def test_a_crash_is_logged_at_once_on_the_owners_logger_and_not_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    starts = []

    async def loop() -> None:
        starts.append(1)
        await asyncio.sleep(0)
        raise ValueError("a bug in the loop")

    background = Background("test-crash", loop, log)
    background.start()
    await until(lambda: not background.running, what="the loop died")

    def logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "tests.background"]

    await until(lambda: logged(), what="the crash logged before anyone stops the owner")
    [record] = logged()
    assert record.levelno == logging.ERROR and "test-crash" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)
    assert starts == [1]  # not restarted (a restart would be synchronous with the crash)
    await background.stop()  # does not raise what was already logged; drops the task
    gc.collect()  # a task whose exception nobody retrieved would be reported here
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


async def test_a_loop_that_returns_is_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tests.background")

    async def loop() -> None:
        await asyncio.sleep(0)

    background = Background("test-returns", loop, log)
    background.start()
    await until(lambda: not background.running, what="the loop returned")
    await background.stop()
    assert not [r for r in caplog.records if r.name == "tests.background"]


async def test_stop_lets_the_callers_own_cancellation_through() -> None:
    cleaning, release, cleaned = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def loop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaning.set()
            await release.wait()  # a slow cleanup, during which the closer is cancelled
            cleaned.set()

    background = Background("test-caller-cancelled", loop, log)
    background.start()
    await asyncio.sleep(0)
    closer = asyncio.create_task(background.stop())
    await until(cleaning.is_set, what="the loop's cleanup began")
    assert not closer.done()
    closer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closer
    release.set()  # the loop's cleanup still finishes, on its own
    await until(cleaned.is_set, what="the loop's cleanup finished")
    await until(lambda: task_named("test-caller-cancelled") is None, what="the loop's task ended")


async def test_cancel_ends_the_loop_without_waiting_for_it() -> None:
    ended = asyncio.Event()

    async def loop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.set()

    background = Background("test-cancel", loop, log)
    background.start()
    await asyncio.sleep(0)
    background.cancel()  # synchronous: for owners that cannot await
    background.cancel()
    assert not ended.is_set()
    await until(ended.is_set, what="the loop ended")
    assert not background.running
    await background.stop()


async def test_start_refuses_a_second_loop_and_starts_afresh_after_stop() -> None:
    starts = []

    async def loop() -> None:
        starts.append(1)
        await asyncio.Event().wait()

    background = Background("test-restart", loop, log)
    background.start()
    await until(lambda: starts == [1], what="the loop started")
    with pytest.raises(RuntimeError, match="test-restart is already running"):
        background.start()
    await background.stop()
    background.start()
    await until(lambda: len(starts) == 2, what="the second start ran the loop again")
    assert background.running
    await background.stop()
