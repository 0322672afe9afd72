"""start_eagerly: a coroutine runs at once in the caller's task; a task only if it waits."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from live.eager import start_eagerly

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


async def test_a_coroutine_that_never_waits_runs_now_and_needs_no_task() -> None:
    ran: list[str] = []

    async def write() -> None:
        ran.append(VAR.get())

    VAR.set("caller")
    before = len(asyncio.all_tasks())
    assert start_eagerly(write()) is None
    assert ran == ["caller"] and len(asyncio.all_tasks()) == before


async def test_one_that_waits_is_carried_on_by_a_task_with_its_result() -> None:
    gate, steps = asyncio.Event(), list[str]()

    async def write() -> int:
        steps.append("started")
        await gate.wait()
        await asyncio.sleep(0)  # a bare yield to the loop, too
        steps.append("finished")
        return 7

    task = start_eagerly(write())
    assert task is not None and steps == ["started"]  # the part before the wait already ran
    gate.set()
    assert await task == 7 and steps == ["started", "finished"]


async def test_errors_before_the_first_wait_raise_in_the_caller_and_after_it_in_the_task() -> None:
    async def fails_now() -> None:
        raise ConnectionError("gone")

    with pytest.raises(ConnectionError):
        start_eagerly(fails_now())

    gate = asyncio.Event()

    async def fails_later() -> None:
        await gate.wait()
        raise ConnectionError("gone later")

    task = start_eagerly(fails_later())
    assert task is not None
    gate.set()
    with pytest.raises(ConnectionError, match="gone later"):
        await task


async def test_cancelling_the_task_cancels_the_coroutine_where_it_waits() -> None:
    cleaned: list[bool] = []

    async def write() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(True)

    task = start_eagerly(write())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]
