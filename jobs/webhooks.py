"""The outbound webhook dispatcher: POSTs what services/webhook_outbox.py recorded.

It runs in every worker process, beside the campaign runs but apart from them: its own
HTTP session, its own bounded concurrency (at most PER_ENDPOINT attempts in flight per
endpoint, CONCURRENCY in all), nothing shared with sending but the event loop. A
receiver that hangs costs one slot for WEBHOOK_TIMEOUT_S, never a message's send.

Several dispatchers (one per worker) share the outbox safely: a delivery is claimed by
a conditional UPDATE that bumps its attempt number, and only that attempt's outcome is
written. A dispatcher that dies mid-attempt leaves the row locked for the timeout plus
a margin; then another one tries again (at least once, never lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from domain import webhooks as wh
from runtime.background import Background
from services import webhook_outbox as outbox
from settings import Settings

log = logging.getLogger("campaigns.webhooks")

CONCURRENCY = 50
PER_ENDPOINT = 8
#: how often due deliveries are looked for when nothing wakes the dispatcher sooner
POLL_S = 0.5
#: a claim outlives the attempt's timeout by this much before another dispatcher retries
CLAIM_MARGIN_S = 30.0
#: what is kept of a receiver's answer or of an error, in the delivery log
ERROR_MAX = 300
USER_AGENT = "campaigns-webhooks/1"
#: how long the delivery log keeps finished deliveries, and how often it is pruned
LOG_RETENTION = timedelta(days=30)
PRUNE_EVERY_S = 3600.0
#: seconds close() lets the loop, and attempts writing their outcome, end by themselves
CLOSE_GRACE_S = 2.0


class PrivateAddress(OSError):
    """The endpoint's name resolved only to addresses webhooks must not call."""


class PublicOnlyResolver(AbstractResolver):
    """aiohttp's resolver, keeping only public addresses: the check happens on the
    address actually connected to, so a name that resolves to a private address now
    (DNS rebinding, an internal name) is refused even if it was public when saved."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [r for r in found if wh.refused_address(r["host"]) is None]
        if not public:
            why = wh.refused_address(found[0]["host"]) if found else "nothing"
            raise PrivateAddress(f"{host} resolves to {why}; webhooks go to public addresses")
        return public

    async def close(self) -> None:
        await self._inner.close()


def _now() -> datetime:
    return datetime.now(UTC)


class WebhookDispatcher:
    """Claims due deliveries and POSTs them, signed, until closed."""

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout_s: float,
        policy: wh.RetryPolicy,
        concurrency: int = CONCURRENCY,
        per_endpoint: int = PER_ENDPOINT,
        poll_s: float = POLL_S,
        claim_margin_s: float = CLAIM_MARGIN_S,
        clock: Callable[[], datetime] = _now,
        rng: random.Random | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.policy = policy
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.poll_s = poll_s
        self.claim_margin_s = claim_margin_s
        self.clock = clock
        self.rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None
        self._loop = Background("webhook-dispatcher", self._run, log)
        self._inflight: dict[int, int] = {}  # delivery id -> endpoint id
        self._tasks: set[asyncio.Task[None]] = set()
        #: the attempts whose HTTP request is on its way (cut short by close())
        self._posting: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._wake = asyncio.Event()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WebhookDispatcher:
        policy = wh.RetryPolicy(
            base=timedelta(seconds=settings.webhook_retry_base_s),
            give_up_after=timedelta(seconds=settings.webhook_retry_for_s),
        )
        options: dict[str, Any] = {
            "allow_private": settings.webhook_allow_private_urls,
            "timeout_s": settings.webhook_timeout_s,
            "policy": policy,
        }
        options.update(overrides)
        return cls(**options)

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.concurrency,
            resolver=None if self.allow_private else PublicOnlyResolver(),
            ttl_dns_cache=60,
        )
        self._session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT})
        self._closing = False
        self._loop.start()

    def wake(self) -> None:
        """Look for due deliveries now (e.g. an event was just recorded)."""
        self._wake.set()

    async def close(self) -> None:
        """Stop claiming, cut short the requests in flight (their claims expire and
        another dispatcher retries them), close the session. Nothing is cancelled inside
        a database write when that can be helped: the loop is asked to end between its
        reads and claims, and an attempt that is writing its outcome finishes it (both
        bounded by CLOSE_GRACE_S)."""
        self._closing = True
        self._wake.set()
        await self._loop.stop(grace=CLOSE_GRACE_S)
        for task in list(self._posting):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=CLOSE_GRACE_S)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        failing = False
        pruned_at = 0.0
        while not self._closing:
            try:
                if time.monotonic() - pruned_at > PRUNE_EVERY_S:
                    await outbox.prune(self.clock() - LOG_RETENTION)
                    pruned_at = time.monotonic()
                await self.dispatch_due()
                if failing:
                    log.warning("webhook dispatcher reaches the database again")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception:
                if not failing:
                    log.exception("webhook dispatcher cannot read the outbox; trying again")
                failing = True
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    async def dispatch_due(self) -> int:
        """Claim what is due and start its attempts; returns how many started."""
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        now = self.clock()
        candidates = await outbox.due(now, limit=free + len(self._inflight) + PER_ENDPOINT)
        busy: dict[int, int] = {}
        for endpoint in self._inflight.values():
            busy[endpoint] = busy.get(endpoint, 0) + 1
        started = 0
        for delivery_id, endpoint_id in candidates:
            if started >= free:
                break
            if delivery_id in self._inflight or busy.get(endpoint_id, 0) >= self.per_endpoint:
                continue
            hold = timedelta(seconds=self.timeout_s + self.claim_margin_s)
            claimed = await outbox.claim(delivery_id, now, hold)
            if claimed is None:
                continue
            busy[endpoint_id] = busy.get(endpoint_id, 0) + 1
            self._inflight[delivery_id] = endpoint_id
            task = asyncio.create_task(self._attempt(claimed), name=f"webhook-{delivery_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _attempt(self, claimed: outbox.Claimed) -> None:
        me = asyncio.current_task()
        try:
            if me is not None:
                self._posting.add(me)
            try:
                status_code, error = await self.post(claimed)
            finally:
                self._posting.discard(me)  # type: ignore[arg-type]
            now = self.clock()
            if status_code is not None and wh.is_success(status_code):
                await outbox.finish(claimed, wh.DeliveryStatus.DELIVERED, now=now, status_code=status_code, error=None)
                return
            retry_at = self.policy.next_attempt(claimed.attempt, now, claimed.created_at, self.rng)
            if retry_at is None:
                log.warning(
                    "webhook %s to endpoint %s failed after %d attempts: %s",
                    claimed.event_id,
                    claimed.endpoint_id,
                    claimed.attempt,
                    error or status_code,
                )
                await outbox.finish(claimed, wh.DeliveryStatus.FAILED, now=now, status_code=status_code, error=error)
            else:
                await outbox.finish(
                    claimed,
                    wh.DeliveryStatus.PENDING,
                    now=now,
                    status_code=status_code,
                    error=error,
                    next_attempt_at=retry_at,
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            # the outcome could not be written: the claim expires and the attempt is
            # made again (at least once)
            log.exception("webhook delivery %s: cannot record its outcome", claimed.id)
        finally:
            self._inflight.pop(claimed.id, None)
            self._wake.set()  # a slot is free, and the campaign's next event may go

    async def post(self, claimed: outbox.Claimed) -> tuple[int | None, str | None]:
        """One attempt: (status code or None, what went wrong or None)."""
        assert self._session is not None
        if not self.allow_private:
            host = urlsplit(claimed.url).hostname or ""
            try:
                why = wh.refused_address(host)
            except ValueError:
                why = None  # a name: PublicOnlyResolver checks what it resolves to
            if why is not None:
                return None, f"refused: {host} is {why}"
        body = claimed.body.encode()
        headers = {
            "Content-Type": "application/json",
            wh.SIGNATURE_HEADER: wh.sign(claimed.secret, int(time.time()), body),
            wh.EVENT_ID_HEADER: claimed.event_id,
            wh.EVENT_TYPE_HEADER: claimed.event_type,
            wh.ATTEMPT_HEADER: str(claimed.attempt),
        }
        try:
            async with self._session.post(
                claimed.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as response:
                answer = (await response.content.read(ERROR_MAX)).decode("utf-8", "replace")
                if wh.is_success(response.status):
                    return response.status, None
                return response.status, f"HTTP {response.status}: {answer}"[:ERROR_MAX]
        except TimeoutError:
            return None, f"no answer within {self.timeout_s:g} s"
        except PrivateAddress as exc:
            return None, f"refused: {exc}"[:ERROR_MAX]
        except aiohttp.ClientError as exc:
            if isinstance(exc.__cause__, PrivateAddress):  # raised by the resolver, wrapped
                return None, f"refused: {exc.__cause__}"[:ERROR_MAX]
            return None, f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
