"""The send loop of one campaign run. It depends only on the SendingStore and Provider
protocols (domain/sending.py), never on the ORM or an HTTP client.

Invariants:
- A message is SENDING (claimed, in the database) before its provider call starts.
- `stop()` is synchronous: once it returns, no new provider call starts. Every call
  checks the flag immediately before `provider.send` with no await in between, so the
  control listener can acknowledge a pause the moment `stop()` returns.
- Calls already in flight finish and are recorded; claimed messages that never got a
  call go back to PENDING (CANCELLED if the campaign was cancelled meanwhile).
- Outcomes are written in bulk, each batch in one transaction with its counters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from domain.sending import (
    CampaignToSend,
    Claimed,
    Outcome,
    Provider,
    Recorded,
    RetryPolicy,
    SendingStore,
    SendRequest,
    SendResult,
)
from domain.templates import placeholders, render

log = logging.getLogger("campaigns.sender")


class Limiter(Protocol):
    async def acquire(self) -> None:
        """Wait until one more send may start."""
        ...


class RunEnded:
    COMPLETED = "completed"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FAILED = "failed"
    LEASE_LOST = "lease-lost"
    SHUTDOWN = "shutdown"
    INCOMPLETE = "incomplete"


class CampaignRun:
    """Sends one campaign's pending messages until none are left or it is stopped."""

    def __init__(
        self,
        store: SendingStore,
        provider: Provider,
        campaign: CampaignToSend,
        owner: str,
        limiter: Limiter,
        *,
        policy: RetryPolicy | None = None,
        concurrency: int = 200,
        batch_size: int = 500,
        flush_every: float = 0.1,
        lease_ttl: float = 15.0,
        on_progress: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.campaign = campaign
        self.owner = owner
        self.limiter = limiter
        self.policy = policy or RetryPolicy()
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.flush_every = flush_every
        self.lease_ttl = lease_ttl
        self.on_progress = on_progress
        self.stopped: str | None = None
        self._fatal: SendResult | None = None
        self._stop_event = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        self._outcomes: list[Recorded] = []
        self._flush_now = asyncio.Event()
        self._closing = False
        self._names = placeholders(campaign.body)
        # what this run resolved, for the failure-rate guard ("after the first N attempts")
        self.resolved = 0
        self.failed = 0
        #: monotonic time the latest provider call started (pause latency measurements)
        self.last_call_started = 0.0
        self.calls_started = 0

    # -------------------------------------------------------------------- control

    def stop(self, reason: str) -> None:
        """Synchronous on purpose: after it returns no new provider call starts."""
        if self.stopped is None:
            self.stopped = reason
            self._stop_event.set()
            self._flush_now.set()

    async def quiet(self, within: float) -> None:
        """After stop(): wait (bounded) until the calls already started have finished, so
        that no request of this run is still on its way to the provider. Under load a
        call that passed its check can reach the provider tens of ms later."""
        pending = [t for t in self._inflight if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=within)

    # ----------------------------------------------------------------------- run

    async def run(self) -> str:
        flusher = asyncio.create_task(self._flush_loop())
        renewer = asyncio.create_task(self._renew_loop())
        try:
            await self._feed()
            if self._inflight:
                await asyncio.gather(*self._inflight, return_exceptions=True)
        except asyncio.CancelledError:
            self.stop(RunEnded.SHUTDOWN)
            raise
        finally:
            renewer.cancel()
            # Ask the flusher to finish rather than cancelling it: a cancel landing
            # inside a write would lose that batch (and 3.11's wait_for can swallow it).
            self._closing = True
            self._flush_now.set()
            await asyncio.gather(flusher, renewer, return_exceptions=True)
            await asyncio.shield(self._flush())
        if self._fatal is not None:
            reason = f"The provider refused the campaign: {self._fatal.error_code} {_text(self._fatal)}"
            await self.store.transition(self.campaign.id, "FAIL", "worker", reason)
        if self.stopped is None:
            if await self.store.unresolved(self.campaign.id) == 0:
                await self.store.transition(self.campaign.id, "COMPLETE", "worker", None)
                self.stopped = RunEnded.COMPLETED
            else:
                self.stopped = RunEnded.INCOMPLETE  # e.g. resolved by receipts meanwhile
        return self.stopped

    async def _feed(self) -> None:
        while self.stopped is None:
            want = max(self.batch_size, self.concurrency)
            batch = await self.store.claim(self.campaign.id, self.owner, want)
            if not batch:
                return
            for index, message in enumerate(batch):
                await self._slots.acquire()
                if self.stopped is None:
                    await self.limiter.acquire()
                if self.stopped is not None:
                    self._slots.release()
                    for rest in batch[index:]:
                        self._give_back(rest, calls=0)
                    return
                task = asyncio.create_task(self._send(message))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    # ---------------------------------------------------------------------- send

    def _request(self, message: Claimed) -> SendRequest:
        c = self.campaign
        return SendRequest(
            message_id=message.id,
            campaign_id=c.id,
            phone=message.phone,
            body=render(c.body, message.variables),
            template_name=c.template_name,
            template_language=c.template_language,
            parameters=tuple(str(message.variables.get(n, "")) for n in self._names),
            send_round=message.send_round,
        )

    async def _send(self, message: Claimed) -> None:
        try:
            request = self._request(message)
            calls = 0
            while True:
                if self.stopped is not None:  # checked right before the call: no await between
                    self._give_back(message, calls)
                    return
                self.calls_started += 1
                self.last_call_started = time.monotonic()
                result = await self.provider.send(request)
                calls += 1
                if self._resolve(message, result, calls):
                    return
                delay = self.policy.delay(calls, result)
                try:
                    async with asyncio.timeout(delay):  # a stop ends the backoff early
                        await self._stop_event.wait()
                except TimeoutError:
                    pass
        except Exception:  # a bug must not strand the message in SENDING for this run
            log.exception("send failed unexpectedly", extra={"message_id": message.id})
            self._give_back(message, 0)
        finally:
            self._slots.release()

    def _resolve(self, message: Claimed, result: SendResult, calls: int) -> bool:
        """Record a final outcome and return True, or False to retry after a backoff."""
        extra = calls - 1
        outcome = result.outcome
        if outcome is Outcome.ACCEPTED:
            self._record(Recorded(message.id, "SENT", result.provider_message_id, extra_attempts=extra))
            return True
        if outcome is Outcome.FATAL:
            # Not this message's fault: give it back so RETRY sends it, and stop the run.
            self._give_back(message, calls)
            if self.stopped is None:
                self.stop(RunEnded.FAILED)
                self._fatal = result
            return True
        if outcome is Outcome.TRANSIENT:
            if result.ambiguous and not self.provider.honours_idempotency:
                # The provider may have it; resending could deliver twice. RETRY_FAILED
                # resends it deliberately.
                self._record(Recorded(message.id, "FAILED", None, "in_doubt", _text(result), extra_attempts=extra))
                return True
            if calls < self.policy.max_attempts:
                return False
        self._record(
            Recorded(message.id, "FAILED", None, result.error_code or "error", _text(result), extra_attempts=extra)
        )
        return True

    def _give_back(self, message: Claimed, calls: int) -> None:
        self._outcomes.append(Recorded(message.id, "PENDING", extra_attempts=calls - 1))

    def _record(self, outcome: Recorded) -> None:
        self._outcomes.append(outcome)
        if len(self._outcomes) >= 1_000:
            self._flush_now.set()

    # --------------------------------------------------------- flush and guards

    async def _flush_loop(self) -> None:
        while not self._closing:
            try:
                async with asyncio.timeout(self.flush_every):
                    await self._flush_now.wait()
            except TimeoutError:
                pass
            self._flush_now.clear()
            await self._flush()

    async def _flush(self) -> None:
        if not self._outcomes:
            return
        batch, self._outcomes = self._outcomes, []
        try:
            sent, failed = await self.store.record(self.campaign.id, batch)
        except Exception:
            # keep the outcomes: they are written with the next flush (the database is
            # the truth; losing them would leave sent messages looking in doubt)
            log.exception("writing %s outcomes failed; will retry", len(batch))
            self._outcomes[:0] = batch
            await asyncio.sleep(0.5)
            return
        self.resolved += sent + failed
        self.failed += failed
        if self.on_progress is not None and (sent or failed):
            self.on_progress()
        await self._guard()

    async def _guard(self) -> None:
        c = self.campaign
        if c.failure_threshold is None or self.stopped is not None:
            return
        if self.resolved < c.failure_sample_size:
            return
        rate = self.failed / self.resolved
        if rate > c.failure_threshold:
            self.stop(RunEnded.PAUSED)
            reason = f"Failure rate {rate:.1%} is above {c.failure_threshold:.1%} after {self.resolved} attempts."
            await self.store.transition(c.id, "AUTO_PAUSE", "failure-guard", reason)

    async def _renew_loop(self) -> None:
        # A pause or cancel that never reached us by Redis is seen here at the latest.
        # If renewing keeps failing, stop before the lease can expire: another worker
        # would take it and resend our in-flight messages as in doubt.
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.lease_ttl / 5)
            try:
                held = await self.store.renew_lease(self.campaign.id, self.owner, self.lease_ttl)
            except Exception:
                log.exception("renewing the lease of campaign %s failed", self.campaign.id)
                if time.monotonic() - renewed > self.lease_ttl / 2:
                    self.stop(RunEnded.LEASE_LOST)
                    return
                continue
            if not held:
                self.stop(RunEnded.LEASE_LOST)
                return
            renewed = time.monotonic()


def _text(result: SendResult) -> str:
    return result.error_message or result.error_code or "unknown error"
