"""Start a coroutine at once, in the caller's task, and give it a task only if it must wait.

A WebSocket send almost never waits: it writes to the transport's buffer and returns.
Wrapping each of 5,000 sends per event in a task costs a task creation and a loop
wake-up each (the fan-out's largest cost after the writes themselves). This is what
Python 3.12's eager tasks do; the service also runs on 3.11, which lacks them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


def start_eagerly(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T] | None:
    """Run `coro` until it finishes or first has to wait.

    Returns None when it finished without waiting (its result is dropped); a task that
    carries it on from where it stopped otherwise. An exception raised before the
    first wait propagates to the caller, as from a plain call.
    """
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    except BaseException:
        coro.close()
        raise
    return asyncio.ensure_future(_carry_on(coro, waiting_on))


async def _carry_on(coro: Coroutine[Any, Any, T], waiting_on: Any) -> T:
    return await _Resumed(coro, waiting_on)


class _Resumed(Awaitable[T]):
    """Drives `coro` from the future it is waiting on, as `await` would have: the task
    awaiting this sees the futures `coro` yields, so it waits on them and forwards
    results, exceptions and cancellation exactly as for a plain task."""

    __slots__ = ("coro", "waiting_on")

    def __init__(self, coro: Coroutine[Any, Any, T], waiting_on: Any) -> None:
        self.coro, self.waiting_on = coro, waiting_on

    def __await__(self) -> Generator[Any, Any, T]:
        coro, waiting_on = self.coro, self.waiting_on
        while True:
            try:
                sent = yield waiting_on
            except BaseException as exc:  # thrown in by the task: cancellation included
                try:
                    waiting_on = coro.throw(exc)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
            else:
                try:
                    waiting_on = coro.send(sent)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
