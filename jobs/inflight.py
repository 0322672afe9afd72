"""The provider calls a campaign run has in flight: a slot each (at most the run's
concurrency), and the waits for them.

A stop must never wait for a hung call: `slot()` gives up once the run is stopped, and
`settle()` waits for the calls in flight no longer than the drain timeout counted from
the stop. A call still hanging then stays SENDING in the database: in doubt, never lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from jobs.run_config import RunStop


class InFlight:
    """The calls of one run; `stop` is the run's."""

    def __init__(self, concurrency: int, stop: RunStop, drain_timeout: float) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = stop
        self._drain_timeout = drain_timeout

    async def slot(self) -> bool:
        """A free call slot, or False once the run is stopped: a stop must not wait for
        a hung call to hand its slot back. Whoever got one hands it back with
        `release()`."""
        if not self._slots.locked():
            await self._slots.acquire()  # free: returns at once
            return True
        acquire = asyncio.ensure_future(self._slots.acquire())
        stop = asyncio.ensure_future(self._stop.event.wait())
        got = False
        try:
            await asyncio.wait({acquire, stop}, return_when=asyncio.FIRST_COMPLETED)
            got = acquire.done() and self._stop.reason is None
            return got
        finally:
            stop.cancel()
            acquire.cancel()  # a no-op once done; a waiter woken meanwhile hands its slot on
            if not got and acquire.done() and not acquire.cancelled():
                self._slots.release()

    def release(self) -> None:
        self._slots.release()

    def start(self, call: Coroutine[Any, Any, None]) -> None:
        """Run `call` (which holds a slot, and releases it when done) in a task of its own."""
        task = asyncio.create_task(call)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def quiet(self, within: float) -> None:
        """Wait (bounded) until the calls already started have finished."""
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=within)

    async def settle(self) -> None:
        """Wait for the calls in flight: all of them while the run goes on, and once it
        is stopped no longer than the drain timeout counted from the stop, so that a
        call hanging at the provider cannot hold up a shutdown."""
        pending: set[asyncio.Future[Any]] = {t for t in self._tasks if not t.done()}
        if pending and self._stop.reason is None:
            stop = asyncio.ensure_future(self._stop.event.wait())
            try:
                while pending and not stop.done():
                    _, pending = await asyncio.wait(pending | {stop}, return_when=asyncio.FIRST_COMPLETED)
                    pending.discard(stop)
            finally:
                stop.cancel()
        if pending:
            await asyncio.wait(pending, timeout=self._drain_left())

    def _drain_left(self) -> float:
        if self._stop.at is None:
            return self._drain_timeout
        return max(0.0, self._stop.at + self._drain_timeout - time.monotonic())
