"""Status webhooks: scheduled per message, posted signed, retried as Meta retries, counted.

One background task wakes every `webhook_flush_ms`, takes every status that is due and
posts them in batches of up to `webhook_batch_size` (Meta: mostly one status per POST).
A POST answered non-2xx (or not at all) goes back into the schedule with a doubling,
capped backoff, and is retried until it succeeds, runs out of attempts, or has been
retried for `webhook_retry_for_s` (Meta: 7 days); so a receiver that is down for a while
gets everything once it is back, and nothing waits in a sleeping task meanwhile.
POSTs go through one aiohttp ClientSession (httpx collapses under concurrency,
docs/STACK.md) with a bounded number in flight, so a slow receiver delays webhooks
instead of piling up connections.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from simulator.config import SimulatorConfig
from simulator.ledger import Ledger
from simulator.wire import signature, webhook_body


@dataclass(slots=True)
class _Retry:
    """A POST that failed: its statuses, attempts so far, and when it was first tried."""

    statuses: list[dict[str, Any]]
    attempts: int
    first_at: float


class WebhookDispatcher:
    """Holds due-time-ordered statuses and posts them from a task started by `start()`."""

    def __init__(self, config: SimulatorConfig, ledger: Ledger) -> None:
        self.config = config
        self.ledger = ledger
        #: where statuses go; None schedules nothing (settable after start, for tests whose
        #: receiver port is only known once it runs)
        self.url: str | None = config.webhook_url
        # (due monotonic time, tie-breaker, a status or a POST to retry): the sequence
        # number keeps equal due times in scheduling order and spares comparing dicts.
        self._heap: list[tuple[float, int, dict[str, Any] | _Retry]] = []
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
        waiting = sum(len(item.statuses) if isinstance(item, _Retry) else 1 for _, _, item in self._heap)
        self._heap.clear()
        self._settled(waiting)

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
        """Start POSTs for everything due at `now` (float("inf") flushes everything)."""
        heap = self._heap
        fresh: list[dict[str, Any]] = []
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)[2]
            if isinstance(item, _Retry):
                self._start(item.statuses, item.attempts, item.first_at)
            else:
                fresh.append(item)
        size = self.config.webhook_batch_size
        for i in range(0, len(fresh), size):
            self._start(fresh[i : i + size], 0, time.monotonic())

    def _start(self, statuses: list[dict[str, Any]], attempts: int, first_at: float) -> None:
        task = asyncio.create_task(self._post(statuses, attempts, first_at))
        # Strong references: the loop keeps only weak ones to tasks.
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def _post(self, statuses: list[dict[str, Any]], attempts: int, first_at: float) -> None:
        config, counters = self.config, self.ledger.webhooks
        n = len(statuses)
        body = webhook_body(config.waba_id, config.display_phone_number, config.phone_number_id, statuses)
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature(config.app_secret, body),
            "User-Agent": "facebookexternalua",
        }
        settled = True
        try:
            if await self._attempt(body, headers):
                counters.posts_sent += 1
                counters.statuses_sent += n
                counters.sent_by_kind.update(s["status"] for s in statuses)
                return
            attempts += 1
            now = time.monotonic()
            if attempts >= config.webhook_max_attempts or now - first_at >= config.webhook_retry_for_s:
                counters.posts_failed += 1
                counters.statuses_dropped += n
                return
            counters.retries += 1
            backoff = min(config.webhook_retry_base_ms * 2 ** (attempts - 1), config.webhook_retry_max_ms) / 1000.0
            heapq.heappush(self._heap, (now + backoff, next(self._seq), _Retry(statuses, attempts, first_at)))
            settled = False
        finally:
            # Posted, dropped or cancelled at shutdown: no longer pending either way.
            if settled:
                self._settled(n)

    async def _attempt(self, body: bytes, headers: dict[str, str]) -> bool:
        """One POST; True on 2xx. Connection errors and timeouts are failures, not raised."""
        url, session, semaphore = self.url, self._session, self._semaphore
        if url is None or session is None or semaphore is None:
            return False
        async with semaphore:
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    self.ledger.webhooks.answer_times.append(time.perf_counter() - started)
                    return 200 <= response.status < 300
            except (aiohttp.ClientError, TimeoutError, OSError):
                return False
