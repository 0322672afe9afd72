"""The send loop of one campaign run. It depends only on the SendingStore and Provider
protocols (domain/sending.py), never on the ORM or an HTTP client.

Invariants:
- A message is SENDING (claimed under this run's fence, in the database) before its
  provider call starts, and a run claims only what can start soon (its rate and
  concurrency), so a crash leaves few messages in doubt.
- A provider call starts only while the run can prove its lease (domain/lease.py) and
  has not been stopped: both are checked immediately before `provider.send`, with no
  await in between. So `stop()` returning means no new call starts, and a run cut off
  from the database, or paused past its lease, starts none either.
- Calls already in flight finish and are recorded, on stop and on cancellation
  (SIGTERM) alike; claimed messages that never got a call go back to PENDING
  (CANCELLED if the campaign was cancelled meanwhile). A call whose answer was lost
  leaves its message in doubt: it is reconciled, never resent at once, unless the
  provider honours idempotency keys.
- Every call, retries included, goes through the rate limiter.
- Outcomes are written in bulk, each batch in one transaction with its counters.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from domain.lease import LeaseProof, LeaseTimes
from domain.lifecycle import Action, CampaignStatus
from domain.sending import (
    RATE_LIMIT,
    Claimed,
    Counts,
    InDoubtPolicy,
    Lease,
    Outcome,
    Provider,
    Recorded,
    RecordedStatus,
    RetryPolicy,
    SendingStore,
    SendRequest,
    SendResult,
    guard_rate,
)
from domain.templates import placeholders, render

log = logging.getLogger("campaigns.sender")


class Limiter(Protocol):
    async def acquire(self) -> None:
        """Wait until one more send may start."""
        ...

    def backoff(self, seconds: float) -> None:
        """The provider asked to slow down (130429): hand out no slot for `seconds`."""
        ...


class RunEnded(StrEnum):
    """Why a run stopped sending."""

    COMPLETED = "completed"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FAILED = "failed"
    LEASE_LOST = "lease-lost"
    SHUTDOWN = "shutdown"
    #: only in-doubt messages are left: the sweep reconciles them after the window
    WAITING = "waiting"
    #: something else resolved the last messages meanwhile, or a stop came late
    INCOMPLETE = "incomplete"


#: what a control message's action stops a run with
STOPPED_BY: dict[Action, RunEnded] = {
    Action.PAUSE: RunEnded.PAUSED,
    Action.CANCEL: RunEnded.CANCELLED,
    Action.FAIL: RunEnded.FAILED,
}


@dataclass(frozen=True, slots=True)
class RunConfig:
    concurrency: int = 200
    batch_size: int = 500
    flush_every: float = 0.1
    lease: LeaseTimes = field(default_factory=LeaseTimes)
    #: messages per second this run may send at most (campaign and account limits)
    rate: float | None = None
    #: claim what can start within this many seconds at `rate`
    claim_horizon: float = 1.0
    #: seconds to wait for the calls in flight when stopped (beyond: they stay in doubt)
    drain_timeout: float = 20.0
    reconcile_window: float = 600.0
    in_doubt_policy: InDoubtPolicy = InDoubtPolicy.RESEND

    def claim_size(self) -> int:
        """What can start within `claim_horizon` at the run's rate (without a rate, what
        the concurrency lets start at once), at most a batch."""
        wanted = math.ceil(self.rate * self.claim_horizon) if self.rate else self.concurrency
        return max(1, min(self.batch_size, wanted))


class CampaignRun:
    """Sends one campaign's pending messages until none are left or it is stopped."""

    def __init__(
        self,
        store: SendingStore,
        provider: Provider,
        lease: Lease,
        limiter: Limiter,
        *,
        config: RunConfig | None = None,
        policy: RetryPolicy | None = None,
        proven_at: tuple[float, float] | None = None,
        on_progress: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.lease = lease
        self.campaign = lease.campaign
        self.limiter = limiter
        self.config = config or RunConfig()
        self.policy = policy or RetryPolicy()
        self.on_progress = on_progress
        self.stopped: RunEnded | None = None
        self._fatal: SendResult | None = None
        self._stop_event = asyncio.Event()
        self._stopped_at: float | None = None  # monotonic; the drain timeout counts from it
        self._slots = asyncio.Semaphore(self.config.concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        self._outcomes: list[Recorded] = []
        self._flush_now = asyncio.Event()
        self._closing = False
        self._names = placeholders(self.campaign.body)
        self.proof = LeaseProof(self.config.lease.proof)
        mono, wall = proven_at or (time.monotonic(), time.time())
        self.proof.renewed(mono, wall)  # the acquisition proves the lease from before it was sent
        self._proven = asyncio.Event()
        self._proven.set()
        #: the highest id claimed: the next claim starts after it (see the store's claim)
        self._cursor = 0

    # -------------------------------------------------------------------- control

    def stop(self, reason: RunEnded) -> None:
        """Synchronous on purpose: after it returns no new provider call starts."""
        if self.stopped is None:
            self.stopped = reason
            self._stopped_at = time.monotonic()
            self._stop_event.set()
            self._proven.set()  # wake a feed waiting for its proof: it sees the stop
            self._flush_now.set()

    async def quiet(self, within: float) -> None:
        """After stop(): wait (bounded) until the calls already started have finished, so
        that no request of this run is still on its way to the provider. Under load a
        call that passed its check can reach the provider tens of ms later."""
        pending = [t for t in self._inflight if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=within)

    def _may_call(self) -> bool:
        return self.stopped is None and self.proof.valid(time.monotonic(), time.time())

    # ----------------------------------------------------------------------- run

    async def run(self) -> RunEnded:
        flusher = asyncio.create_task(self._flush_loop())
        renewer = asyncio.create_task(self._renew_loop())
        cancelled = False
        try:
            while True:
                claimed = await self._feed()
                await self._settle_inflight()
                if self.stopped is not None or not await self._more_to_send():
                    break
                if not claimed:
                    # pending messages this run cannot claim (a status change its next
                    # renewal will see, or rows locked elsewhere): do not spin
                    await self._pause(self.config.lease.renew_every)
        except asyncio.CancelledError:
            # SIGTERM (arq cancels its jobs) or the job's timeout: drain as for a stop.
            # A second cancellation while draining ends it there; what is left in
            # SENDING is then in doubt, never lost.
            cancelled = True
            self.stop(RunEnded.SHUTDOWN)
            await self._settle_inflight()
        finally:
            renewer.cancel()
            # Ask the flusher to finish rather than cancelling it: a cancel landing
            # inside a write would lose that batch (and 3.11's wait_for can swallow it).
            self._closing = True
            self._flush_now.set()
            await asyncio.gather(flusher, renewer, return_exceptions=True)
            await asyncio.shield(self._final_flush())
        if cancelled:
            raise asyncio.CancelledError
        return await self._end()

    async def _end(self) -> RunEnded:
        if self._fatal is not None:
            reason = f"The provider refused the campaign: {self._fatal.error_code} {_text(self._fatal)}"
            await self.store.transition(self.campaign.id, Action.FAIL, "worker", reason)
            return self.stopped or RunEnded.FAILED
        if self.stopped is not None:
            return self.stopped
        left = await self.store.remaining(self.campaign.id)
        if left.unresolved == 0:
            if await self.store.transition(self.campaign.id, Action.COMPLETE, "worker", None):
                return RunEnded.COMPLETED
            return RunEnded.INCOMPLETE
        if left.pending == 0 and left.sending == left.in_doubt:
            return RunEnded.WAITING
        return RunEnded.INCOMPLETE

    async def _more_to_send(self) -> bool:
        """Claims ran dry: reconcile this run's in-doubt messages whose window passed
        (some may go back to PENDING), and say whether anything is left to claim."""
        try:
            await self._flush()
            back = await self.store.reconcile(self.lease, self.config.reconcile_window, self.config.in_doubt_policy)
            left = await self.store.remaining(self.campaign.id)
        except Exception:
            log.exception("campaign %s: reading what is left failed", self.campaign.id)
            return False
        if back.resent or back.failed:
            log.warning(
                "campaign %s: %s in-doubt messages resent, %s failed in_doubt",
                self.campaign.id,
                back.resent,
                back.failed,
            )
            if self.on_progress is not None:
                self.on_progress()
        return left.pending > 0

    async def _settle_inflight(self) -> None:
        """Wait for the calls in flight: all of them while the run goes on, and once it
        is stopped no longer than the drain timeout counted from the stop, so that a
        call hanging at the provider cannot hold up a shutdown. A call still hanging
        then stays SENDING: in doubt, never lost."""
        pending: set[asyncio.Future[Any]] = {t for t in self._inflight if not t.done()}
        if pending and self.stopped is None:
            stop = asyncio.ensure_future(self._stop_event.wait())
            try:
                while pending and not stop.done():
                    _, pending = await asyncio.wait(pending | {stop}, return_when=asyncio.FIRST_COMPLETED)
                    pending.discard(stop)
            finally:
                stop.cancel()
        if pending:
            await asyncio.wait(pending, timeout=self._drain_left())

    def _drain_left(self) -> float:
        if self._stopped_at is None:
            return self.config.drain_timeout
        return max(0.0, self._stopped_at + self.config.drain_timeout - time.monotonic())

    async def _slot(self) -> bool:
        """A free call slot, or False once the run is stopped: a stop must not wait for
        a hung call to hand its slot back."""
        if not self._slots.locked():
            await self._slots.acquire()  # free: returns at once
            return True
        acquire = asyncio.ensure_future(self._slots.acquire())
        stop = asyncio.ensure_future(self._stop_event.wait())
        got = False
        try:
            await asyncio.wait({acquire, stop}, return_when=asyncio.FIRST_COMPLETED)
            got = acquire.done() and self.stopped is None
            return got
        finally:
            stop.cancel()
            acquire.cancel()  # a no-op once done; a waiter woken meanwhile hands its slot on
            if not got and acquire.done() and not acquire.cancelled():
                self._slots.release()

    async def _feed(self) -> int:
        """Claim and start calls until claims run dry or the run stops; how many were claimed."""
        claimed = 0
        while self.stopped is None:
            if not await self._wait_proven():
                break
            try:
                batch = await self._claim()
            except Exception:
                log.exception("campaign %s: claiming failed; trying again", self.campaign.id)
                await self._pause(0.5)
                continue
            if not batch:
                break
            claimed += len(batch)
            await self._start(batch)
        return claimed

    async def _start(self, batch: list[Claimed]) -> None:
        """Start a call for each claimed message as slots and the limiter allow; what
        cannot start (stopped, proof lapsed, cancelled) goes back."""
        index = 0
        try:
            for index, message in enumerate(batch):  # noqa: B007 (read in the handler)
                if not await self._slot():
                    break  # stopped: the rest goes back
                try:
                    if self.stopped is None:
                        await self.limiter.acquire()
                except BaseException:
                    self._slots.release()
                    raise
                if not self._may_call():
                    self._slots.release()
                    break  # stopped (the feed ends) or the proof lapsed (it waits for it)
                task = asyncio.create_task(self._send(message))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            else:
                return
        except asyncio.CancelledError:
            for rest in batch[index:]:
                self._give_back(rest, calls=0)
            raise
        for rest in batch[index:]:
            self._give_back(rest, calls=0)

    async def _claim(self) -> list[Claimed]:
        """A claim that a cancellation cannot cut in half: if it committed, its rows are
        given back rather than left SENDING (which would put them in doubt)."""
        claim = asyncio.ensure_future(self.store.claim(self.lease, self.config.claim_size(), self._cursor))
        try:
            batch = await asyncio.shield(claim)
            if batch:
                self._cursor = batch[-1].id
            elif self._cursor:
                # past the end: what is still PENDING lies behind the cursor (given back,
                # or resent after reconciliation), so scan from the start once more
                self._cursor = 0
                return await self._claim()
            return batch
        except asyncio.CancelledError:
            try:
                async with asyncio.timeout(5):
                    rows = await claim
            except BaseException:
                rows = []
            for message in rows:
                self._give_back(message, calls=0)
            raise

    async def _wait_proven(self) -> bool:
        """Wait until the lease is proven again (a renewal got through); False if stopped."""
        while not self._may_call():
            if self.stopped is not None:
                return False
            self._proven.clear()
            try:
                async with asyncio.timeout(self.config.lease.renew_every):
                    await self._proven.wait()
            except TimeoutError:
                pass
        return True

    async def _pause(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):  # a stop ends the pause early
                await self._stop_event.wait()
        except TimeoutError:
            pass

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
        calls = 0
        calling = False
        try:
            request = self._request(message)
            while True:
                if calls:
                    await self.limiter.acquire()  # retries are paced like first calls
                if not self._may_call():  # checked right before the call: no await between
                    self._give_back(message, calls)
                    return
                calling = True
                result = await self.provider.send(request)
                calling = False
                calls += 1
                if self._resolve(message, result, calls):
                    return
                delay = self.policy.delay(calls, result)
                if result.error_code == RATE_LIMIT:
                    self.limiter.backoff(delay)
                await self._pause(delay)
        except Exception:
            # A bug must not strand the message for this run: if a call may have gone
            # out, it is in doubt; if none did, it is claimed again later.
            log.exception("send failed unexpectedly", extra={"message_id": message.id})
            if calling:
                self._record(
                    Recorded(
                        message.id,
                        RecordedStatus.IN_DOUBT,
                        error_message="internal error during the call",
                        extra_attempts=calls,
                        send_round=message.send_round,
                    )
                )
            else:
                self._give_back(message, calls)
        finally:
            self._slots.release()

    def _resolve(self, message: Claimed, result: SendResult, calls: int) -> bool:
        """Record a final outcome and return True, or False to retry after a backoff."""
        extra = calls - 1
        outcome = result.outcome
        if outcome is Outcome.ACCEPTED:
            self._record(
                Recorded(
                    message.id,
                    RecordedStatus.SENT,
                    result.provider_message_id,
                    extra_attempts=extra,
                    send_round=message.send_round,
                )
            )
            return True
        if outcome is Outcome.FATAL:
            # Not this message's fault: give it back so RETRY sends it, and stop the run.
            self._give_back(message, calls)
            if self.stopped is None:
                self._fatal = result
                self.stop(RunEnded.FAILED)
            return True
        if outcome is Outcome.TRANSIENT:
            if result.ambiguous and not self.provider.honours_idempotency:
                # The provider may have it and would not recognise a resend: its status
                # webhook will tell (reconciliation), a resend now could deliver twice.
                self._record(
                    Recorded(
                        message.id,
                        RecordedStatus.IN_DOUBT,
                        error_message=_text(result),
                        extra_attempts=extra,
                        send_round=message.send_round,
                    )
                )
                return True
            if calls < self.policy.max_attempts:
                return False
        self._record(
            Recorded(
                message.id,
                RecordedStatus.FAILED,
                None,
                result.error_code or "error",
                _text(result),
                extra_attempts=extra,
                send_round=message.send_round,
            )
        )
        return True

    def _give_back(self, message: Claimed, calls: int) -> None:
        self._outcomes.append(
            Recorded(message.id, RecordedStatus.PENDING, extra_attempts=calls - 1, send_round=message.send_round)
        )

    def _record(self, outcome: Recorded) -> None:
        self._outcomes.append(outcome)
        if len(self._outcomes) >= 1_000:
            self._flush_now.set()

    # --------------------------------------------------------- flush and guards

    async def _flush_loop(self) -> None:
        while not self._closing:
            try:
                async with asyncio.timeout(self.config.flush_every):
                    await self._flush_now.wait()
            except TimeoutError:
                pass
            self._flush_now.clear()
            if not await self._flush():
                await asyncio.sleep(0.5)

    async def _flush(self) -> bool:
        """Write what is buffered; False if the write failed (the outcomes are kept: the
        database is the truth, losing them would leave sent messages in doubt)."""
        if not self._outcomes:
            return True
        batch, self._outcomes = self._outcomes, []
        try:
            written = await self.store.record(self.lease, batch)
        except Exception:
            log.exception("writing %s outcomes failed; will retry", len(batch))
            self._outcomes[:0] = batch
            return False
        if self.on_progress is not None and (written.sent or written.failed):
            self.on_progress()
        if written.counts is not None:
            await self._guard(written.counts)
        return True

    async def _final_flush(self) -> None:
        """The last outcomes, retried for a while if the database is away; what still
        cannot be written stays SENDING in the database, so it is in doubt, not lost."""
        deadline = time.monotonic() + self.config.drain_timeout
        while not await self._flush():
            if time.monotonic() > deadline:
                log.error("campaign %s: %s outcomes could not be written", self.campaign.id, len(self._outcomes))
                return
            await asyncio.sleep(0.5)

    async def _guard(self, counts: Counts) -> None:
        """The failure guard over the campaign's own counters since this run began, so
        failures reported later by receipt count as much as refusals at once."""
        c = self.campaign
        if c.failure_threshold is None or self.stopped is not None or counts.status is not CampaignStatus.PROCESSING:
            return
        rate = guard_rate(self.lease.counts, counts, c.failure_sample_size)
        if rate is not None and rate > c.failure_threshold:
            self.stop(RunEnded.PAUSED)
            resolved = (counts.sent - self.lease.counts.sent) + (counts.failed - self.lease.counts.failed)
            reason = f"Failure rate {rate:.1%} is above {c.failure_threshold:.1%} after {resolved} attempts."
            await self.store.transition(c.id, Action.AUTO_PAUSE, "failure-guard", reason)

    async def _renew_loop(self) -> None:
        # A pause or cancel that never reached us by Redis is seen here at the latest.
        # A renewal proves the lease only from the moment it was sent, and one that hangs
        # is abandoned when the proof it could extend has run out: meanwhile the send
        # path refuses to start calls on its own (the proof lapses).
        times = self.config.lease
        while True:
            await asyncio.sleep(times.renew_every)
            mono, wall = time.monotonic(), time.time()
            try:
                async with asyncio.timeout(max(times.renew_every, self.proof.remaining(mono))):
                    counts = await self.store.renew_lease(self.lease, times.ttl)
            except Exception as exc:
                log.warning("renewing the lease of campaign %s failed: %r", self.campaign.id, exc)
                if self.proof.remaining(time.monotonic()) < -times.ttl:
                    self.stop(RunEnded.LEASE_LOST)  # surely expired by now: another run may have it
                    return
                continue
            if counts is None:
                self.stop(RunEnded.LEASE_LOST)
                return
            self.proof.renewed(mono, wall)
            self._proven.set()
            await self._guard(counts)


def _text(result: SendResult) -> str:
    return result.error_message or result.error_code or "unknown error"
