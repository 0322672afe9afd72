"""Status webhooks: scheduled per message, posted signed, retried as Meta retries, counted.

One background task wakes every `webhook_flush_ms`, takes statuses that are due and posts
them in batches of up to `webhook_batch_size` (Meta: mostly one status per POST). At most
`webhook_concurrency` status POSTs exist at once, body and task included: what is due
beyond that stays in the schedule (a status is a small dict there) and a POST that ends
starts the next one, so a receiver slower than the sends costs a longer schedule, not a
task and a built body per waiting status.
A POST answered non-2xx (or not at all) goes back into the schedule with a doubling,
capped backoff, and is retried until it succeeds, runs out of attempts, or has been
retried for `webhook_retry_for_s` (Meta: 7 days); so a receiver that is down for a while
gets everything once it is back, and nothing waits in a sleeping task meanwhile.
Each status is scheduled with the number that sent its message, and a POST holds one
number's statuses only: its `entry[].id` is that number's WABA and its `metadata` that
number (one app, so one secret signs them all, as on Meta).
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
from simulator.numbers import PhoneNumber
from simulator.wire import account_change_body, change_body, signature, webhook_body


@dataclass(slots=True)
class _Retry:
    """A POST that failed: its statuses, attempts so far, and when it was first tried."""

    number: PhoneNumber
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
        #: whose metadata a status scheduled without a number carries
        self.default_number = config.number
        # (due monotonic time, tie-breaker, its number, a status or a POST to retry): the
        # sequence number keeps equal due times in scheduling order and spares comparing.
        self._heap: list[tuple[float, int, PhoneNumber, dict[str, Any] | _Retry]] = []
        self._seq = itertools.count()
        self._posts: set[asyncio.Task[None]] = set()
        #: status POSTs started and not ended (<= webhook_concurrency)
        self._status_posts = 0
        self._stopping = False
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._semaphore: asyncio.Semaphore | None = None
        #: set while nothing is waiting or in flight (for drain)
        self._idle = asyncio.Event()
        self._idle.set()

    def _settled(self, n: int, number: PhoneNumber) -> None:
        """`n` statuses of `number` left the pending set (posted, dropped or cleared)."""
        self.ledger.webhooks_pending -= n
        self.ledger.of(number.phone_number_id).webhooks_pending -= n
        if self.ledger.webhooks_pending <= 0:
            self._idle.set()

    @property
    def posts_started(self) -> int:
        """Status POSTs started and not ended (each a task holding its body)."""
        return self._status_posts

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def schedule_many(self, items: list[tuple[float, dict[str, Any]]], number: PhoneNumber | None = None) -> None:
        """Post each status of a message `number` sent (default: the config's number) at
        its monotonic due time (or at the first flush after it)."""
        number = number or self.default_number
        heap, seq = self._heap, self._seq
        for due, status in items:
            heapq.heappush(heap, (due, next(seq), number, status))
        self.ledger.webhooks_pending += len(items)
        self.ledger.of(number.phone_number_id).webhooks_pending += len(items)
        self._idle.clear()

    async def start(self) -> None:
        if self.running:
            return
        limit = self.config.webhook_concurrency
        self._semaphore = asyncio.Semaphore(limit)
        self._stopping = False
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=limit),
            timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout_s),
        )
        self._task = asyncio.create_task(self._run(), name="simulator-webhooks")

    async def stop(self) -> None:
        """Cancel the flush loop and POSTs in flight; statuses not yet posted are kept."""
        self._stopping = True  # a POST cancelled here must not start the next one
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
        waiting: dict[str, tuple[PhoneNumber, int]] = {}
        for _, _, number, item in self._heap:
            n = len(item.statuses) if isinstance(item, _Retry) else 1
            waiting[number.phone_number_id] = (number, waiting.get(number.phone_number_id, (number, 0))[1] + n)
        self._heap.clear()
        for number, n in waiting.values():
            self._settled(n, number)

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
        """Start POSTs for what is due at `now` (float("inf"): everything), as many as
        there are free slots; the rest waits in the schedule for the next flush or for a
        POST to end."""
        heap = self._heap
        free = self.config.webhook_concurrency - self._status_posts
        size = self.config.webhook_batch_size
        # Batched per number, in due order within each: a POST has one metadata. A batch
        # being filled holds a slot, so `free` counts it from its first status on.
        fresh: dict[str, tuple[PhoneNumber, list[dict[str, Any]], float]] = {}
        while heap and heap[0][0] <= now:
            due, _, number, item = heap[0]
            batch = None if isinstance(item, _Retry) else fresh.get(number.phone_number_id)
            if batch is None and free <= 0:
                break
            heapq.heappop(heap)
            if isinstance(item, _Retry):
                free -= 1
                self._start(item.number, item.statuses, item.attempts, item.first_at)
            else:
                if batch is None:
                    free -= 1
                    batch = fresh[number.phone_number_id] = (number, [], due)
                batch[1].append(item)
                if len(batch[1]) >= size:
                    del fresh[number.phone_number_id]
                    self._start(number, batch[1], 0, time.monotonic(), batch[2])
        for number, statuses, due in fresh.values():
            self._start(number, statuses, 0, time.monotonic(), due)

    def _start(
        self,
        number: PhoneNumber,
        statuses: list[dict[str, Any]],
        attempts: int,
        first_at: float,
        due: float | None = None,
    ) -> None:
        """A task for one POST; `due`: when its first status was due (a first attempt)."""
        self._status_posts += 1
        if due is not None:
            late = max(0.0, first_at - due)
            counters = self.ledger.webhooks
            counters.late_times.append(late)
            counters.late_max = max(counters.late_max, late)
        task = asyncio.create_task(self._post(number, statuses, attempts, first_at))
        # Strong references: the loop keeps only weak ones to tasks.
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def _post(self, number: PhoneNumber, statuses: list[dict[str, Any]], attempts: int, first_at: float) -> None:
        config = self.config
        n = len(statuses)
        body = webhook_body(number.waba_id, number.display_phone_number, number.phone_number_id, statuses)
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature(config.app_secret, body),
            "User-Agent": "facebookexternalua",
        }
        # The whole simulator's counters and this number's
        both = (self.ledger.webhooks, self.ledger.of(number.phone_number_id).webhooks)
        settled = True
        try:
            if await self._attempt(body, headers):
                for counters in both:
                    counters.posts_sent += 1
                    counters.statuses_sent += n
                    counters.sent_by_kind.update(s["status"] for s in statuses)
                return
            attempts += 1
            now = time.monotonic()
            if attempts >= config.webhook_max_attempts or now - first_at >= config.webhook_retry_for_s:
                for counters in both:
                    counters.posts_failed += 1
                    counters.statuses_dropped += n
                return
            for counters in both:
                counters.retries += 1
            backoff = min(config.webhook_retry_base_ms * 2 ** (attempts - 1), config.webhook_retry_max_ms) / 1000.0
            retry = _Retry(number, statuses, attempts, first_at)
            heapq.heappush(self._heap, (now + backoff, next(self._seq), number, retry))
            settled = False
        finally:
            # Posted, dropped or cancelled at shutdown: no longer pending either way.
            self._status_posts -= 1
            if settled:
                self._settled(n, number)
            if not self._stopping:
                self.flush(time.monotonic())  # this slot is free: the next due status takes it

    def post_change(self, number: PhoneNumber, field: str, value: dict[str, Any]) -> bool:
        """POST one change of another webhook field (an inbound message, a preference
        change) for `number`, signed like the statuses and retried as they are, in a task
        of its own (they are few). False when no receiver is set (nothing is posted)."""
        if self.url is None:
            return False
        return self.post_body(
            number, change_body(number.waba_id, number.display_phone_number, number.phone_number_id, field, value)
        )

    def post_account_change(self, number: PhoneNumber, field: str, value: dict[str, Any]) -> bool:
        """POST one change about `number`'s WABA itself (a template's status), as
        `post_change` does, without number metadata; counted under `number`."""
        if self.url is None:
            return False
        return self.post_body(number, account_change_body(number.waba_id, field, value, int(time.time())))

    def post_body(self, number: PhoneNumber, body: bytes) -> bool:
        """POST a built webhook body in a task of its own, signed and retried."""
        if self.url is None:
            return False
        self.ledger.webhooks_pending += 1
        self.ledger.of(number.phone_number_id).webhooks_pending += 1
        self._idle.clear()
        task = asyncio.create_task(self._post_change(number, body))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)
        return True

    async def _post_change(self, number: PhoneNumber, body: bytes) -> None:
        config = self.config
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature(config.app_secret, body),
            "User-Agent": "facebookexternalua",
        }
        both = (self.ledger.webhooks, self.ledger.of(number.phone_number_id).webhooks)
        first_at = time.monotonic()
        try:
            for attempt in range(1, config.webhook_max_attempts + 1):
                if await self._attempt(body, headers):
                    for counters in both:
                        counters.posts_sent += 1
                    return
                if time.monotonic() - first_at >= config.webhook_retry_for_s:
                    break
                for counters in both:
                    counters.retries += 1
                await asyncio.sleep(
                    min(config.webhook_retry_base_ms * 2 ** (attempt - 1), config.webhook_retry_max_ms) / 1000.0
                )
            for counters in both:
                counters.posts_failed += 1
        finally:
            self._settled(1, number)

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
