"""One home for a component's long-running asyncio task: started by the component's
`start()`, cancelled and awaited by its `close()`, its crash logged.

A component (the inbox writer and applier, the key watch, the progress publisher, the
live hub, a broadcast group, the worker's control listener) owns one `Background`:

    log = logging.getLogger("campaigns.dispatcher")

    class Dispatcher:
        def __init__(self) -> None:
            self._loop = Background("webhook-dispatcher", self._run, log)

        async def start(self) -> None:
            self._loop.start()

        async def close(self) -> None:
            await self._loop.stop()  # idempotent; then release what the loop used

        async def _run(self) -> None:
            while True:
                try:
                    await self.dispatch_once()
                except Exception as exc:  # a passing failure: say so, wait, go on
                    log.warning("dispatching failed (%s); retrying", exc)
                await asyncio.sleep(1)

The contract:
- The loop handles its own passing failures (the database or Redis away) and goes on:
  the helper never restarts it. An exception that escapes the loop is a bug: it is
  logged once, with its traceback, on the owner's logger as it happens, not when the
  owner closes, and the task stays dead: `running` is False, so the owner can refuse
  work that needs the loop (the inbox writer does).
- `stop()` cancels the task and waits for it to end, so its `finally` blocks have run
  when it returns. It raises neither the task's CancelledError nor its crash (already
  logged): a shutdown goes on to close the next component. A cancellation of the
  caller itself while it waits still propagates. Calling it again, or before `start()`,
  does nothing.
- `cancel()` is for an owner that cannot await (a synchronous callback): the task ends
  at its next await, nobody waits for it.
- `start()` after `stop()` starts the loop afresh (tests restart components).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any


class Background:
    """A named long-running task of one owner; see the module's docstring."""

    def __init__(self, name: str, run: Callable[[], Coroutine[Any, Any, object]], log: logging.Logger) -> None:
        """`run` makes the loop's coroutine (called by each `start()`); `log` is the
        owner's logger, which reports a crash."""
        self.name = name
        self._run = run
        self._log = log
        self._task: asyncio.Task[object] | None = None

    @property
    def running(self) -> bool:
        """Started, not stopped, and not ended (by a crash or by returning)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the loop in a task of this name. Raises RuntimeError if it is running."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self._task = asyncio.create_task(self._run(), name=self.name)
        self._task.add_done_callback(self._ended)

    def cancel(self) -> None:
        """Ask the task to end without waiting for it (idempotent)."""
        if self._task is not None:
            self._task.cancel()

    async def stop(self, grace: float = 0.0) -> None:
        """Cancel the task and wait until it has ended (idempotent); see the module's
        docstring for what it raises: only the caller's own cancellation. With `grace`,
        an owner that has asked its loop to end (a flag the loop checks) first gives it
        that many seconds to return by itself: a loop cancelled inside a database
        transaction is what the grace spares."""
        task, self._task = self._task, None
        if task is None:
            return
        if grace > 0:
            await asyncio.wait([task], timeout=grace)
        task.cancel()
        # asyncio.wait neither raises the task's outcome nor cancels it when the caller
        # is cancelled: the caller's CancelledError alone comes out of here.
        await asyncio.wait([task])

    def _ended(self, task: asyncio.Task[object]) -> None:
        if task.cancelled():
            return
        crash = task.exception()  # retrieved here, so asyncio never reports it unretrieved
        if crash is not None:
            self._log.error("%s crashed and is not restarted", self.name, exc_info=crash)
