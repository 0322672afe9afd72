"""Status webhooks: scheduled per message, posted in signed batches, retried, counted.

One background task wakes every `webhook_flush_ms`, takes every status that is due and
posts them in batches of up to `webhook_batch_size`, as Meta batches statuses. POSTs go
through one aiohttp ClientSession (httpx collapses under concurrency, STACK.md) with a
bounded number in flight, so a slow receiver delays webhooks instead of piling up tasks.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Any

import aiohttp

from simulator.config import SimulatorConfig
from simulator.ledger import Ledger
from simulator.wire import signature, webhook_body

#: longest pause between two attempts of one POST
MAX_BACKOFF_S = 5.0


class WebhookDispatcher:
    """Holds due-time-ordered statuses and posts them from a task started by `start()`."""

    def __init__(self, config: SimulatorConfig, ledger: Ledger) -> None:
        self.config = config
        self.ledger = ledger
        #: where statuses go; None schedules nothing (settable after start, for tests whose
        #: receiver port is only known once it runs)
        self.url: str | None = config.webhook_url
        # (due monotonic time, tie-breaker, status object): the sequence number keeps equal
        # due times in scheduling order and spares comparing dicts.
        self._heap: list[tuple[float, int, dict[str, Any]]] = []
        self._seq = itertools.count()
        self._posts: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._semaphore: asyncio.Semaphore | None = None
        #: set while nothing is waiting or in flight (for drain)
        self._idle = asyncio.Event()
        self._idle.set()

    def _settled(self, n: int) -> None:
        """`n` statuses left the pending set (posted, dropped or cleared)."""
        self.ledger.webhooks_pending -= n
        if self.ledger.webhooks_pending <= 0:
            self._idle.set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def schedule_many(self, items: list[tuple[float, dict[str, Any]]]) -> None:
        """Post each status at its monotonic due time (or at the first flush after it)."""
        heap, seq = self._heap, self._seq
        for due, status in items:
            heapq.heappush(heap, (due, next(seq), status))
        self.ledger.webhooks_pending += len(items)
        self._idle.clear()

    async def start(self) -> None:
        if self.running:
            return
        limit = self.config.webhook_concurrency
        self._semaphore = asyncio.Semaphore(limit)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=limit),
            timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout_s),
        )
        self._task = asyncio.create_task(self._run(), name="simulator-webhooks")

    async def stop(self) -> None:
        """Cancel the flush loop and POSTs in flight; statuses not yet posted are kept."""
        tasks = [t for t in (self._task, *self._posts) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def clear(self) -> None:
        """Forget statuses not yet posted (reset). POSTs in flight finish on their own."""
        self._settled(len(self._heap))
        self._heap.clear()

    async def drain(self) -> None:
        """Wait until every scheduled status has been posted or dropped (bound it with
        `asyncio.timeout`)."""
        await self._idle.wait()

    async def _run(self) -> None:
        interval = self.config.webhook_flush_ms / 1000.0
        while True:
            await asyncio.sleep(interval)
            self.flush(time.monotonic())

    def flush(self, now: float) -> None:
        """Start POSTs for every status due at `now` (float("inf") flushes everything)."""
        heap = self._heap
        due: list[dict[str, Any]] = []
        while heap and heap[0][0] <= now:
            due.append(heapq.heappop(heap)[2])
        size = self.config.webhook_batch_size
        for i in range(0, len(due), size):
            task = asyncio.create_task(self._post(due[i : i + size]))
            # Strong references: the loop keeps only weak ones to tasks.
            self._posts.add(task)
            task.add_done_callback(self._posts.discard)

    async def _post(self, statuses: list[dict[str, Any]]) -> None:
        config, counters = self.config, self.ledger.webhooks
        n = len(statuses)
        body = webhook_body(config.waba_id, config.display_phone_number, config.phone_number_id, statuses)
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature(config.app_secret, body),
            "User-Agent": "facebookexternalua",
        }
        try:
            for attempt in range(1, config.webhook_max_attempts + 1):
                if await self._attempt(body, headers):
                    counters.posts_sent += 1
                    counters.statuses_sent += n
                    return
                if attempt < config.webhook_max_attempts:
                    counters.retries += 1
                    backoff = config.webhook_retry_base_ms / 1000.0 * 2 ** (attempt - 1)
                    await asyncio.sleep(min(backoff, MAX_BACKOFF_S))
            counters.posts_failed += 1
            counters.statuses_dropped += n
        finally:
            # Posted, dropped or cancelled at shutdown: no longer pending either way.
            self._settled(n)

    async def _attempt(self, body: bytes, headers: dict[str, str]) -> bool:
        """One POST; True on 2xx. Connection errors and timeouts are failures, not raised."""
        url, session, semaphore = self.url, self._session, self._semaphore
        if url is None or session is None or semaphore is None:
            return False
        async with semaphore:
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    return 200 <= response.status < 300
            except (aiohttp.ClientError, TimeoutError, OSError):
                return False
