"""Waiting on a condition, never on the clock: every test that waits for something
waits here, with a timeout and a name for what it waited for."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def until(
    condition: Callable[[], object | Awaitable[object]],
    timeout: float = 5.0,
    what: str = "condition",
    every: float = 0.02,
) -> None:
    """Return once `condition()` (a plain or an async callable) is truthy; fail the test
    after `timeout` seconds, naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(every)


async def steady(
    probe: Callable[[], Awaitable[object]], window: float, timeout: float, what: str = "value", every: float = 0.1
) -> object:
    """Return `probe()`'s value once it has not changed for `window` seconds (in-flight
    work has finished); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last, since = await probe(), time.monotonic()
    while time.monotonic() - since < window:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} still changing after {timeout} s: {last}")
        await asyncio.sleep(every)
        value = await probe()
        if value != last:
            last, since = value, time.monotonic()
    return last
