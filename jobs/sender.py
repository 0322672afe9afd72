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

The parts: jobs/run_config.py (settings, why a run ended, its stop), jobs/inflight.py
(call slots, waiting for the calls in flight), jobs/outcomes.py (the outcome buffer
and its flushes), jobs/renewal.py (the lease and its proof), domain/guard.py (the
failure guard's rule). This module is the loop that claims, calls and decides.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from domain.guard import auto_pause_reason
from domain.lifecycle import Action
from domain.sending import (
    RATE_LIMIT,
    Claimed,
    Counts,
    Lease,
    Outcome,
    Provider,
    Recorded,
    RecordedStatus,
    RetryPolicy,
    SendingStore,
    SendRequest,
    SendResult,
    Written,
)
from domain.templates import PAUSING_CODES, placeholders, render
from jobs.delivery_gate import DeliveryGate
from jobs.inflight import InFlight
from jobs.outcomes import OutcomeBuffer
from jobs.renewal import LeaseRenewal
from jobs.run_config import Limiter, RunConfig, RunEnded, RunStop

log = logging.getLogger("campaigns.sender")


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
        self._fatal: SendResult | None = None
        self._stop = RunStop()
        self._inflight = InFlight(self.config.concurrency, self._stop, self.config.drain_timeout)
        self._outcomes = OutcomeBuffer(
            store,
            lease,
            flush_every=self.config.flush_every,
            drain_timeout=self.config.drain_timeout,
            on_written=self._written,
        )
        self._renewal = LeaseRenewal(
            store,
            lease,
            self.config.lease,
            proven_at=proven_at,
            on_counts=self._guard,
            on_lost=lambda: self.stop(RunEnded.LEASE_LOST),
        )
        self._gate = DeliveryGate(store, lease)
        self._names = placeholders(self.campaign.body)
        #: the highest id claimed: the next claim starts after it (see the store's claim)
        self._cursor = 0

    # -------------------------------------------------------------------- control

    @property
    def stopped(self) -> RunEnded | None:
        """Why the run was stopped; None while it goes on."""
        return self._stop.reason

    def stop(self, reason: RunEnded) -> None:
        """Synchronous on purpose: after it returns no new provider call starts."""
        if self._stop.set(reason):
            self._renewal.wake()  # a feed waiting for its proof sees the stop
            self._outcomes.flush_soon()

    async def quiet(self, within: float) -> None:
        """After stop(): wait (bounded) until the calls already started have finished, so
        that no request of this run is still on its way to the provider. Under load a
        call that passed its check can reach the provider tens of ms later."""
        await self._inflight.quiet(within)

    def _may_call(self) -> bool:
        return self.stopped is None and self._renewal.valid() and not self._gate.lapsed()

    # ----------------------------------------------------------------------- run

    async def run(self) -> RunEnded:
        flusher = asyncio.create_task(self._outcomes.loop())
        renewer = asyncio.create_task(self._renewal.loop())
        cancelled = False
        try:
            while True:
                claimed = await self._feed()
                await self._inflight.settle()
                if self.stopped is not None or not await self._more_to_send():
                    break
                if not claimed:
                    # pending messages this run cannot claim (a status change its next
                    # renewal will see, or rows locked elsewhere): do not spin
                    await self._stop.sleep(self.config.lease.renew_every)
        except asyncio.CancelledError:
            # SIGTERM (arq cancels its jobs) or the job's timeout: drain as for a stop.
            # A second cancellation while draining ends it there; what is left in
            # SENDING is then in doubt, never lost.
            cancelled = True
            self.stop(RunEnded.SHUTDOWN)
            await self._inflight.settle()
        finally:
            renewer.cancel()
            self._outcomes.finish()  # rather than a cancel: see OutcomeBuffer.finish
            await asyncio.gather(flusher, renewer, return_exceptions=True)
            await asyncio.shield(self._outcomes.final_flush())
        if cancelled:
            raise asyncio.CancelledError
        return await self._end()

    async def _end(self) -> RunEnded:
        if self._fatal is not None:
            stopped = PAUSING_CODES.get(self._fatal.error_code or "")
            if stopped is not None:
                c = self.campaign
                reason = (
                    f"WhatsApp {stopped} the template {c.template_name} ({c.template_language}): {_text(self._fatal)}"
                )
                await self.store.transition(c.id, Action.AUTO_PAUSE, "worker", reason)
                return RunEnded.PAUSED
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
            await self._outcomes.flush()
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

    async def _feed(self) -> int:
        """Claim and start calls until claims run dry or the run stops; how many were claimed."""
        claimed = 0
        while self.stopped is None:
            if not await self._renewal.wait_proven(self._stop):
                break
            try:
                if self._gate.lapsed():
                    # what went back unsent must be PENDING again before the gate holds it
                    await self._outcomes.flush()
                await self._gate.apply()
                batch = await self._claim()
            except Exception:
                log.exception("campaign %s: claiming failed; trying again", self.campaign.id)
                await self._stop.sleep(0.5)
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
                if not await self._inflight.slot():
                    break  # stopped: the rest goes back
                try:
                    if self.stopped is None:
                        await self.limiter.acquire()
                except BaseException:
                    self._inflight.release()
                    raise
                if not self._may_call():
                    self._inflight.release()
                    break  # stopped (the feed ends) or the proof lapsed (it waits for it)
                self._inflight.start(self._send(message))
            else:
                return
        except asyncio.CancelledError:
            for rest in batch[index:]:
                self._outcomes.give_back(rest, calls=0)
            raise
        for rest in batch[index:]:
            self._outcomes.give_back(rest, calls=0)

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
                self._outcomes.give_back(message, calls=0)
            raise

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
            parameter_names=c.template_parameter_names,
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
                    self._outcomes.give_back(message, calls)
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
                await self._stop.sleep(delay)
        except Exception:
            # A bug must not strand the message for this run: if a call may have gone
            # out, it is in doubt; if none did, it is claimed again later.
            log.exception("send failed unexpectedly", extra={"message_id": message.id})
            if calling:
                self._outcomes.record(
                    Recorded(
                        message.id,
                        RecordedStatus.IN_DOUBT,
                        error_message="internal error during the call",
                        extra_attempts=calls,
                        send_round=message.send_round,
                    )
                )
            else:
                self._outcomes.give_back(message, calls)
        finally:
            self._inflight.release()

    def _resolve(self, message: Claimed, result: SendResult, calls: int) -> bool:
        """Record a final outcome and return True, or False to retry after a backoff."""
        extra = calls - 1
        outcome = result.outcome
        if outcome is Outcome.ACCEPTED:
            self._outcomes.record(
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
            self._outcomes.give_back(message, calls)
            if self.stopped is None:
                self._fatal = result
                self.stop(RunEnded.FAILED)
            return True
        if outcome is Outcome.TRANSIENT:
            if result.ambiguous and not self.provider.honours_idempotency:
                # The provider may have it and would not recognise a resend: its status
                # webhook will tell (reconciliation), a resend now could deliver twice.
                self._outcomes.record(
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
        self._outcomes.record(
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

    # ------------------------------------------------------------------ guards

    async def _written(self, written: Written) -> None:
        """After each batch of outcomes is written: live numbers, then the guard."""
        if self.on_progress is not None and (written.sent or written.failed):
            self.on_progress()
        if written.counts is not None:
            await self._guard(written.counts)

    async def _guard(self, counts: Counts) -> None:
        """The failure guard (domain/guard.py) over the campaign's counters, after each
        write and each renewal: over its threshold the run stops, then AUTO_PAUSEs."""
        if self.stopped is not None:
            return
        reason = auto_pause_reason(self.campaign, self.lease.counts, counts)
        if reason is not None:
            self.stop(RunEnded.PAUSED)
            try:
                await self.store.transition(self.campaign.id, Action.AUTO_PAUSE, "failure-guard", reason)
            except Exception:
                # Called from the renewer and the flusher: raising would end them. The
                # run is stopped; the campaign stays PROCESSING, so the sweep rings a
                # new run, whose first write checks the guard again.
                log.exception("campaign %s: the failure guard could not pause it", self.campaign.id)


def _text(result: SendResult) -> str:
    return result.error_message or result.error_code or "unknown error"
