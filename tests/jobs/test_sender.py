"""The send loop over an in-memory store and a scripted provider: each path in
milliseconds, no Redis, no database. Several of these are findings of issue 8 (named
in the test's docstring) that the loop used to get wrong."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from functools import partial

import pytest

from domain.lease import LeaseTimes
from domain.lifecycle import Action, CampaignStatus
from domain.messages import MessageStatus as M
from domain.sending import (
    IN_DOUBT_CODE,
    CampaignToSend,
    InDoubtPolicy,
    Outcome,
    RetryPolicy,
    SendRequest,
    SendResult,
)
from jobs.run_config import RunConfig, RunEnded
from jobs.sender import CampaignRun
from tests import waiting
from tests.jobs.memory import CountingLimiter, MemoryStore, ScriptedProvider, accept

FAST = LeaseTimes(ttl=0.5, renew_every=0.02, proof=0.1)
TIMEOUT = SendResult(Outcome.TRANSIENT, error_code="timeout", error_message="no answer in time", ambiguous=True)


def config(**changes: object) -> RunConfig:
    base: dict[str, object] = {
        "concurrency": 20,
        "batch_size": 50,
        "flush_every": 0.005,
        "lease": FAST,
        "drain_timeout": 2.0,
        "reconcile_window": 60.0,
    }
    return RunConfig(**(base | changes))  # type: ignore[arg-type]


async def start(
    store: MemoryStore,
    provider: ScriptedProvider,
    limiter: CountingLimiter | None = None,
    *,
    max_attempts: int = 3,
    **changes: object,
) -> CampaignRun:
    lease = await store.acquire_lease(store.campaign.id, "me", FAST.ttl)
    assert lease is not None
    return CampaignRun(
        store,
        provider,
        lease,
        limiter or CountingLimiter(),
        config=config(**changes),
        policy=RetryPolicy(max_attempts=max_attempts, base=0.001, cap=0.01),
    )


@pytest.fixture
def no_gc_pauses() -> Iterator[None]:
    """The proof is a tenth of a second here: a full collection of the test process's
    heap (hundreds of tests' objects) between a call's check and the moment the fake
    records it would look like a late call. The run itself has no such window."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


#: the send core moves in milliseconds: look often
until = partial(waiting.until, timeout=2.0, every=0.001)


async def test_sends_every_message_once_and_completes() -> None:
    store, provider = MemoryStore(n=30), ScriptedProvider()
    run = await start(store, provider)
    assert await run.run() is RunEnded.COMPLETED
    assert store.by_status() == {M.SENT: 30}
    assert sorted(c.message_id for c in provider.calls) == list(range(1, 31))
    assert store.transitions == [(Action.COMPLETE, "worker", None)]
    assert {r.provider_message_id for r in store.rows.values()} == {f"wamid.{i}.0" for i in range(1, 31)}


async def test_cancellation_waits_for_the_calls_in_flight_and_writes_their_outcomes() -> None:
    """Finding 1: SIGTERM (arq cancels the job) used to return without waiting for the
    calls in flight; their outcomes were never written and the messages left SENDING."""
    store, gate = MemoryStore(n=100), asyncio.Event()
    provider = ScriptedProvider(gate=gate)
    run = await start(store, provider, concurrency=40)
    task = asyncio.create_task(run.run())
    await until(lambda: provider.in_flight == 40)
    task.cancel()
    await asyncio.sleep(0.02)
    calls_at_cancel = len(provider.calls)
    gate.set()  # the provider answers the 40 after the cancel
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(provider.calls) == calls_at_cancel == 40  # nothing new started
    assert store.by_status() == {M.SENT: 40, M.PENDING: 60}  # accepted = written; the rest claimable
    assert all(r.attempts == 1 for r in store.rows.values() if r.status is M.SENT)


async def test_no_call_starts_after_stop_returns_and_unstarted_claims_go_back() -> None:
    store, provider = MemoryStore(n=200), ScriptedProvider(latency=0.002)
    run = await start(store, provider, concurrency=10)
    task = asyncio.create_task(run.run())
    await until(lambda: len(provider.calls) >= 30)
    run.stop(RunEnded.PAUSED)
    stopped_at, calls = time.monotonic(), len(provider.calls)
    await run.quiet(within=1)
    assert await task is RunEnded.PAUSED
    assert len(provider.calls) == calls
    assert all(c.started <= stopped_at for c in provider.calls)
    by = store.by_status()
    assert by[M.SENT] == calls and by[M.PENDING] == 200 - calls and M.SENDING not in by


async def test_a_cancelled_campaign_gets_its_unstarted_claims_cancelled() -> None:
    store, provider = MemoryStore(n=100), ScriptedProvider(latency=0.002)
    run = await start(store, provider, concurrency=5, batch_size=50)
    task = asyncio.create_task(run.run())
    await until(lambda: len(provider.calls) >= 10)
    store.status = CampaignStatus.CANCELLED  # the mutation committed...
    run.stop(RunEnded.CANCELLED)  # ...and the control message arrived
    assert await task is RunEnded.CANCELLED
    by = store.by_status()
    assert by[M.SENT] == len(provider.calls)
    assert by.get(M.CANCELLED, 0) > 0 and M.SENDING not in by


async def test_a_lost_lease_stops_the_run_and_its_outcomes_still_land(no_gc_pauses: None) -> None:
    """Finding 2: a run that lost its lease kept sending. Now the renewal that finds the
    lease taken stops it, and no call starts after the proof of its last renewal."""
    store, provider = MemoryStore(n=2000), ScriptedProvider(latency=0.001)
    run = await start(store, provider, concurrency=10, batch_size=10)
    task = asyncio.create_task(run.run())
    await until(lambda: len(provider.calls) >= 50)
    store.take_over()
    taken_at = time.monotonic()
    assert await task is RunEnded.LEASE_LOST
    assert max(c.started for c in provider.calls) < taken_at + FAST.proof
    # what it had in flight was accepted and is recorded; nothing is left SENDING
    by = store.by_status()
    assert by[M.SENT] == len(provider.calls) and M.SENDING not in by


async def test_a_hanging_renewal_stops_calls_when_the_proof_runs_out(no_gc_pauses: None) -> None:
    """Finding 2: a renewal that hung had no timeout, and the run went on sending long
    after its lease expired (194 calls in one run)."""
    store, provider = MemoryStore(n=100_000), ScriptedProvider(latency=0.0005)
    hang = asyncio.Event()
    proven = []

    async def renew() -> None:
        if store.renewals > 2:
            await hang.wait()  # the database stops answering
        proven.append(time.monotonic())

    store.renew_hook = renew
    run = await start(store, provider, concurrency=5, batch_size=20)
    task = asyncio.create_task(run.run())
    assert await asyncio.wait_for(task, 5) is RunEnded.LEASE_LOST
    last_proof_ends = proven[-1] + FAST.proof
    assert max(c.started for c in provider.calls) < last_proof_ends
    assert M.SENDING not in store.by_status()


async def test_a_proof_that_lapses_and_comes_back_resumes_sending() -> None:
    store, provider = MemoryStore(n=300), ScriptedProvider(latency=0.0005)
    slow = asyncio.Event()

    async def renew() -> None:
        if store.renewals == 3:
            await asyncio.sleep(FAST.proof * 2)  # one renewal takes too long, then all is well
        slow.set()

    store.renew_hook = renew
    run = await start(store, provider, concurrency=5, batch_size=10, rate=1000.0)
    assert await asyncio.wait_for(run.run(), 5) is RunEnded.COMPLETED
    assert store.by_status() == {M.SENT: 300}
    assert len(provider.calls) == 300


async def test_claims_are_sized_by_the_rate() -> None:
    """Finding 5: at sendRate 2/s a run claimed 500 messages; a crash then put all of
    them in doubt. A claim now holds what can start within a second at the run's rate
    (RunConfig.claim_size: tests/jobs/test_run_config.py), so few are SENDING at once."""
    store, provider = MemoryStore(n=30), ScriptedProvider()
    run = await start(store, provider, CountingLimiter(interval=0.01), rate=100.0, claim_horizon=0.03)
    assert await run.run() is RunEnded.COMPLETED
    # a claim of 3, plus the one or two sent since the last flush (every 5 ms)
    assert store.max_sending <= 3 + 2


async def test_retries_go_through_the_rate_limiter_and_a_rate_limit_backs_it_off() -> None:
    """Finding 7: retries skipped the limiter, so after 130429 every call in flight came
    back at once."""

    def limited_first(request: SendRequest, attempt: int) -> SendResult:
        if attempt == 0:
            return SendResult(Outcome.TRANSIENT, error_code="130429", retry_after=0.01)
        return accept(request, attempt)

    store, provider, limiter = MemoryStore(n=20), ScriptedProvider(script=limited_first), CountingLimiter()
    run = await start(store, provider, limiter)
    assert await run.run() is RunEnded.COMPLETED
    assert len(provider.calls) == 40
    assert limiter.acquired == len(provider.calls)
    assert limiter.backoffs and all(b == pytest.approx(0.01) for b in limiter.backoffs)
    assert all(r.attempts == 2 for r in store.rows.values())


async def test_the_failure_guard_counts_failures_reported_later_by_receipt() -> None:
    """Finding 8: the guard counted only immediate errors; with every message failing
    later by receipt (131026) a campaign at threshold 5% completed 200/200 failed."""
    campaign = CampaignToSend(1, 1, "Hi {{name}}", None, None, None, 0.05, 20)
    store = MemoryStore(n=2000, campaign=campaign)
    provider = ScriptedProvider(latency=0.0005)
    run = await start(store, provider, CountingLimiter(interval=0.0005), concurrency=5, batch_size=10)

    async def receipts() -> None:  # the provider reports each accepted message failed
        while True:
            store.fail_by_receipt([r.id for r in store.rows.values() if r.status is M.SENT])
            await asyncio.sleep(0.005)

    reporter = asyncio.create_task(receipts())
    try:
        assert await run.run() is RunEnded.PAUSED
    finally:
        reporter.cancel()
    action, actor, reason = store.transitions[-1]
    assert (action, actor) == (Action.AUTO_PAUSE, "failure-guard")
    assert reason is not None and "above 5.0%" in reason
    assert store.by_status()[M.PENDING] > 1000  # it stopped early


async def test_an_ambiguous_answer_leaves_the_message_in_doubt_not_resent() -> None:
    """Without idempotency keys a timeout after the request left may be an accepted
    send: the message is not retried, it waits for its status webhook."""

    def lost_third(request: SendRequest, attempt: int) -> SendResult:
        return TIMEOUT if request.message_id == 3 else accept(request, attempt)

    store, provider = MemoryStore(n=5), ScriptedProvider(script=lost_third)
    run = await start(store, provider)
    assert await run.run() is RunEnded.WAITING  # the sweep reconciles it later
    assert provider.attempts(3) == 1
    row = store.rows[3]
    assert (row.status, row.error_code) == (M.SENDING, IN_DOUBT_CODE) and row.doubt_at is not None
    assert store.status is CampaignStatus.PROCESSING


async def test_with_idempotency_keys_an_ambiguous_answer_is_retried_under_the_same_key() -> None:
    def lost_once(request: SendRequest, attempt: int) -> SendResult:
        return TIMEOUT if attempt == 0 else accept(request, attempt)

    keys: list[str] = []

    def keyed(request: SendRequest, attempt: int) -> SendResult:
        keys.append(request.idempotency_key)
        return lost_once(request, attempt)

    store, provider = MemoryStore(n=5), ScriptedProvider(script=keyed, honours_idempotency=True)
    run = await start(store, provider)
    assert await run.run() is RunEnded.COMPLETED
    assert store.by_status() == {M.SENT: 5}
    assert sorted(keys) == sorted([f"msg-{i}" for i in range(1, 6)] * 2)


@pytest.mark.parametrize(
    ("receipts_flow", "policy", "expected"),
    [
        (True, InDoubtPolicy.RESEND, {M.SENT: 5}),
        (False, InDoubtPolicy.RESEND, {M.SENT: 4, M.FAILED: 1}),
        (True, InDoubtPolicy.FAIL, {M.SENT: 4, M.FAILED: 1}),
    ],
)
async def test_in_doubt_messages_past_the_window_are_resent_or_failed_by_policy(
    receipts_flow: bool, policy: InDoubtPolicy, expected: dict[M, int]
) -> None:
    def lost_first(request: SendRequest, attempt: int) -> SendResult:
        return TIMEOUT if (request.message_id, attempt) == (2, 0) else accept(request, attempt)

    store, provider = MemoryStore(n=5), ScriptedProvider(script=lost_first)
    if receipts_flow:
        store.last_receipt_at = time.time() + 60  # statuses are being applied
    run = await start(store, provider, reconcile_window=0.0, in_doubt_policy=policy)
    assert await run.run() is RunEnded.COMPLETED
    assert store.by_status() == expected
    assert provider.attempts(2) == (2 if expected == {M.SENT: 5} else 1)
    if M.FAILED in expected:
        assert store.rows[2].error_code == IN_DOUBT_CODE


async def test_a_fatal_error_fails_the_campaign_and_gives_every_message_back() -> None:
    def refused(request: SendRequest, attempt: int) -> SendResult:
        return SendResult(Outcome.FATAL, error_code="132001", error_message="template missing")

    store, provider = MemoryStore(n=50), ScriptedProvider(script=refused)
    run = await start(store, provider, concurrency=1)
    assert await run.run() is RunEnded.FAILED
    assert store.status is CampaignStatus.FAILED
    assert store.transitions[-1][0] is Action.FAIL and "132001" in (store.transitions[-1][2] or "")
    assert store.by_status() == {M.PENDING: 50}
    assert all(r.attempts == 1 for r in store.rows.values() if r.id == 1)


async def test_permanent_and_exhausted_transient_errors_fail_the_message() -> None:
    def answers(request: SendRequest, attempt: int) -> SendResult:
        if request.message_id == 1:
            return SendResult(Outcome.PERMANENT, error_code="131026")
        if request.message_id == 2:
            return SendResult(Outcome.TRANSIENT, error_code="131000")
        return accept(request, attempt)

    store, provider = MemoryStore(n=4), ScriptedProvider(script=answers)
    run = await start(store, provider, max_attempts=3)
    assert await run.run() is RunEnded.COMPLETED
    assert (store.rows[1].status, store.rows[1].error_code, provider.attempts(1)) == (M.FAILED, "131026", 1)
    assert (store.rows[2].status, store.rows[2].error_code, provider.attempts(2)) == (M.FAILED, "131000", 3)
    assert store.rows[2].attempts == 3


async def test_outcomes_are_kept_while_the_database_refuses_them() -> None:
    store, provider = MemoryStore(n=20), ScriptedProvider()
    store.record_fails = 2
    run = await start(store, provider)
    assert await run.run() is RunEnded.COMPLETED
    assert store.by_status() == {M.SENT: 20}
