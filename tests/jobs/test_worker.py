"""The worker (jobs/worker.py) in this process: the Runner's lease hand-offs, and
CampaignWorker's SIGTERM drain and Redis outages, against a real Redis and the real
test database. The provider is `ScriptedProvider` (a fake of our Provider protocol)
whose gate holds calls in flight for as long as a test needs.

Each test gets a redis-server of its own (`own_redis`): the worker's queue holds only
the test's jobs, the control channel reaches no other session's worker, and a test
can kill it and start it again. The workers here run without the sweep cron: a sweep
acts on every campaign in the shared test database (the sweep has tests/jobs/test_sweep.py).
tests/e2e/test_faults.py proves the same faults on real processes with a ledger; these
pin down the module's own promises: what happens when, and within what bound.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from arq import ArqRedis

from domain.ids import expect_id
from domain.lease import StopConfirmation
from domain.lifecycle import Action, CampaignStatus
from domain.messages import MessageStatus
from domain.sending import Outcome, SendRequest, SendResult
from domain.waiting import MARKETING_LIMIT
from jobs.control import ControlListener
from jobs.effects import LifecycleEffects, lazy_redis
from jobs.sweep import SWEEP_EVERY_S
from jobs.worker import RUN_TIMEOUT_S, CampaignWorker, Runner, startup, worker_settings
from models import Campaign, Message
from providers.whatsapp import WhatsAppProvider
from runtime.keys import JOB_RUN_CAMPAIGN, JOB_START_SCHEDULED, JOB_SWEEP, QUEUE, run_job_id, wake_job_id
from services.sending_store import SqlSendingStore
from services.transitions import apply_action
from settings import Settings
from tests.conftest import Api
from tests.e2e.conftest import RedisServer
from tests.jobs.memory import ScriptedProvider, accept
from tests.services.test_receipts import assert_consistent
from tests.waiting import until

S = CampaignStatus
#: calls in flight per run: small, so a run has claimed messages it has not called yet
CONCURRENCY = 5
DRAIN_S = 1.0


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def fast(settings: Settings, own_redis: RedisServer) -> Settings:
    """A short lease (proof 0.6 s, renewed every 0.2 s) and drain, on the test's Redis;
    no daily messaging limit (tests/jobs/test_daily_limit.py has it)."""
    return Settings(
        database_url=settings.database_url,
        redis_url=own_redis.url,
        log_level="WARNING",
        worker_concurrency=CONCURRENCY,
        worker_lease_ttl_s=3.0,
        worker_drain_timeout_s=DRAIN_S,
        whatsapp_messaging_tier=settings.whatsapp_messaging_tier,
    )


@pytest.fixture
def effects(redis: ArqRedis) -> LifecycleEffects:
    """The API's effects, on the test's Redis (no publisher: nothing here watches)."""
    return LifecycleEffects(redis)


@pytest.fixture
def gate() -> Iterator[asyncio.Event]:
    """Holds every provider call in flight until set; set at the end whatever happened,
    so no call is left waiting after its test."""
    event = asyncio.Event()
    try:
        yield event
    finally:
        event.set()


async def queued(api: Api, effects: LifecycleEffects | None, n: int = 30) -> int:
    """A QUEUED campaign of `n` recipients; with `effects`, its run job is enqueued."""
    view = await api.ready_campaign(n)
    pk = expect_id(view["id"], "Campaign")
    after = effects.after_transition if effects is not None else None
    await apply_action(api.principal, pk, Action.SEND_NOW, after=after)
    return pk


async def status_of(pk: int) -> CampaignStatus:
    return (await Campaign.get(id=pk)).status


async def _completed(pk: int) -> bool:
    return await status_of(pk) is S.COMPLETED


async def by_status(pk: int) -> dict[str, int]:
    found: dict[str, int] = {}
    for status in await Message.filter(campaign_id=pk).values_list("status", flat=True):
        key = str(getattr(status, "value", status))
        found[key] = found.get(key, 0) + 1
    return found


async def run_jobs(redis: ArqRedis, pk: int) -> list[str]:
    return [i.decode() for i in await redis.zrange(QUEUE, 0, -1) if i.decode().startswith(f"campaigns:run:{pk}:")]


async def handed_on(redis: ArqRedis, pk: int) -> bool:
    """The campaign's run job for its current state is in the queue (another worker's)."""
    c = await Campaign.get(id=pk)
    return run_job_id(pk, c.version, c.lease_fence) in await run_jobs(redis, pk)


def called(provider: ScriptedProvider) -> list[int]:
    return sorted(c.message_id for c in provider.calls)


@asynccontextmanager
async def runner_of(fast: Settings, provider: ScriptedProvider, *, listen: bool = False) -> AsyncIterator[Runner]:
    """A Runner as the worker's startup builds it, with its own Redis pool and control
    listener (subscribed only with `listen`)."""
    redis = lazy_redis(fast.redis_url or "")
    control = ControlListener(redis)
    if listen:
        await control.start(ready_within=3)
    runner = Runner(fast, redis, cast(WhatsAppProvider, provider), control)
    try:
        yield runner
    finally:
        await control.close()
        await redis.aclose()


def with_provider(provider: ScriptedProvider) -> Callable[[dict[str, Any]], Any]:
    """The worker's own startup, then the scripted provider in place of the HTTP one."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        await startup(ctx)
        runner: Runner = ctx["runner"]
        await runner.provider.close()
        runner.provider = cast(WhatsAppProvider, provider)

    return on_startup


@dataclass
class Running:
    worker: CampaignWorker
    task: asyncio.Task[None]

    @property
    def runner(self) -> Runner:
        return cast(Runner, self.worker.ctx["runner"])


def settle_jobs(worker: CampaignWorker) -> None:
    """Forget the job tasks that have ended: a job the hard stop cancelled while arq was
    still writing its result must not fail close(), which gathers the job tasks without
    return_exceptions (awaiting a cancelled task raises CancelledError every time)."""
    for job_id, job in list(worker.tasks.items()):
        if job.done():
            if not job.cancelled():
                job.exception()  # retrieved: asyncio does not report it unretrieved
            worker.tasks.pop(job_id, None)


@asynccontextmanager
async def running_worker(fast: Settings, provider: ScriptedProvider, **overrides: Any) -> AsyncIterator[Running]:
    """A CampaignWorker from `worker_settings` (sharing the test's ORM, as `campaigns dev`
    does; no sweep; polling every 0.1 s), running in this event loop."""
    options = {
        "cron_jobs": [],
        "on_startup": with_provider(provider),
        "ctx": {"settings": fast, "shared_orm": True},
        "poll_delay": 0.1,
    } | overrides
    worker = CampaignWorker(**worker_settings(fast, **options))
    task = asyncio.create_task(worker.async_run())
    running = Running(worker, task)
    try:
        await until(lambda: "runner" in worker.ctx or task.done(), what="worker started")
        assert not task.done(), task
        yield running
    finally:
        if not task.done():
            worker.handle_sig(signal.SIGUSR1)  # arq's hard stop: cancel the jobs and the loop
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)  # let them end
        settle_jobs(worker)
        await worker.close()
        if worker._handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                worker.loop.remove_signal_handler(sig)


# --------------------------------------------------------------------- the Runner


async def test_a_second_run_job_for_a_campaign_running_here_does_nothing(
    api: Api, fast: Settings, gate: asyncio.Event
) -> None:
    pk = await queued(api, None, n=10)
    provider = ScriptedProvider(gate=gate)
    async with runner_of(fast, provider) as runner:
        first = asyncio.create_task(runner.run(pk))
        await until(lambda: provider.in_flight == CONCURRENCY, what="calls in flight")
        assert await runner.run(pk) == "already running here"
        gate.set()
        assert await asyncio.wait_for(first, 5) == "completed"
    assert called(provider) == sorted(await Message.filter(campaign_id=pk).values_list("id", flat=True))
    assert await status_of(pk) is S.COMPLETED


async def test_two_workers_racing_for_one_campaign_never_both_run_it(
    api: Api, fast: Settings, gate: asyncio.Event
) -> None:
    pk = await queued(api, None, n=20)
    provider = ScriptedProvider(gate=gate)
    async with runner_of(fast, provider) as one, runner_of(fast, provider) as two:
        assert one.owner != two.owner
        runs = asyncio.gather(one.run(pk), two.run(pk))
        await until(lambda: provider.in_flight == CONCURRENCY, what="calls in flight")
        gate.set()
        results = await asyncio.wait_for(runs, 5)
    assert sorted(results) == ["completed", "not leased"]
    assert called(provider) == sorted(await Message.filter(campaign_id=pk).values_list("id", flat=True))
    assert len(provider.calls) == 20  # each message called once, by the one run
    assert (await assert_consistent(pk))["sent"] == 20


async def test_shutdown_hands_the_campaign_to_another_worker_without_two_runs_at_once(
    api: Api, fast: Settings, redis: ArqRedis, gate: asyncio.Event
) -> None:
    pk = await queued(api, None, n=30)
    provider = ScriptedProvider(gate=gate)
    async with runner_of(fast, provider) as leaving, runner_of(fast, provider) as taking:
        run = asyncio.create_task(leaving.run(pk))
        await until(lambda: provider.in_flight == CONCURRENCY, what="calls in flight")
        leaving.shutdown()  # SIGTERM: synchronous, no call starts after it
        stopped_at = time.monotonic()
        # draining, it still holds the lease: the other worker cannot start a second run
        assert await taking.run(pk) == "not leased"
        gate.set()
        assert await asyncio.wait_for(run, DRAIN_S + 2) == "shutdown"
        assert all(c.started <= stopped_at for c in provider.calls)
        c = await Campaign.get(id=pk)
        assert c.status is S.PROCESSING and c.lease_owner is None  # released, not left to expire
        assert await by_status(pk) == {"SENT": CONCURRENCY, "PENDING": 30 - CONCURRENCY}  # claims given back
        assert await handed_on(redis, pk)
        assert await taking.run(pk) == "completed"
    assert called(provider) == sorted(await Message.filter(campaign_id=pk).values_list("id", flat=True))
    assert (await assert_consistent(pk))["sent"] == 30


async def test_a_run_job_taken_during_shutdown_is_handed_on_untouched(
    api: Api, fast: Settings, redis: ArqRedis
) -> None:
    pk = await queued(api, None, n=3)
    before = await Campaign.get(id=pk)
    provider = ScriptedProvider()
    async with runner_of(fast, provider) as runner:
        runner.shutdown()
        assert await runner.run(pk) == "shutting down"
    after = await Campaign.get(id=pk)
    assert (after.status, after.lease_owner, after.lease_fence) == (S.QUEUED, None, before.lease_fence)
    assert provider.calls == []
    assert await run_jobs(redis, pk) == [run_job_id(pk, after.version, after.lease_fence)]


async def test_a_stop_that_arrives_before_the_run_exists_is_applied_when_it_does(api: Api, fast: Settings) -> None:
    """The control handler is registered before the lease is taken, so a pause that
    arrives while the lease is being taken is not lost: it is not acknowledged (there is
    no run to vouch for yet; the API waits out the proof), and the run, once it exists,
    stops before its first call."""
    pk = await queued(api, None, n=10)
    provider = ScriptedProvider()
    async with runner_of(fast, provider) as runner:
        run = asyncio.create_task(runner.run(pk))
        await asyncio.sleep(0)  # the run registered and is taking the lease
        stop, holder = runner.control.handlers[pk]
        assert holder() is None
        assert stop(Action.PAUSE) is None
        assert await asyncio.wait_for(run, 5) == "paused"
        assert pk not in runner.control.handlers and runner.runs == {} and runner.leases == {}
    assert provider.calls == []
    c = await Campaign.get(id=pk)
    assert c.lease_owner is None and c.lease_fence >= 1  # it did take the lease, and gave it back
    assert await by_status(pk) == {"PENDING": 10}


async def test_a_pause_is_acknowledged_once_the_runs_calls_in_flight_finished(
    api: Api, fast: Settings, effects: LifecycleEffects, gate: asyncio.Event
) -> None:
    """The API's pause against a real run: its answer waits for the lease holder, which
    answers once the calls it had started have finished; after that no call starts."""
    pk = await queued(api, None, n=30)
    provider = ScriptedProvider(gate=gate)
    async with runner_of(fast, provider, listen=True) as runner:
        run = asyncio.create_task(runner.run(pk))
        await until(lambda: provider.in_flight == CONCURRENCY, what="calls in flight")
        pause = asyncio.create_task(apply_action(api.principal, pk, Action.PAUSE, after=effects.after_transition))
        await asyncio.sleep(0.4)  # the window: with calls in flight the holder must not answer yet
        assert not pause.done()
        gate.set()
        applied = await asyncio.wait_for(pause, 2)
        assert applied.stop is StopConfirmation.ACKNOWLEDGED
        assert provider.in_flight == 0 and len(provider.calls) == CONCURRENCY  # done before the answer
        assert await asyncio.wait_for(run, 3) == "paused"
    assert len(provider.calls) == CONCURRENCY  # none after
    assert await status_of(pk) is S.PAUSED
    assert await by_status(pk) == {"SENT": CONCURRENCY, "PENDING": 30 - CONCURRENCY}
    await assert_consistent(pk)


async def test_a_cancelled_run_job_finishes_its_calls_and_hands_the_campaign_on(
    api: Api, fast: Settings, redis: ArqRedis, gate: asyncio.Event
) -> None:
    """arq cancels the job (its hard stop, a job timeout): the run drains as for a
    shutdown, and the campaign goes to another worker at once."""
    pk = await queued(api, None, n=30)
    provider = ScriptedProvider(gate=gate)
    async with runner_of(fast, provider) as runner:
        run = asyncio.create_task(runner.run(pk))
        await until(lambda: provider.in_flight == CONCURRENCY, what="calls in flight")
        run.cancel()
        await asyncio.sleep(0.2)  # the window: it waits for its calls in flight
        assert not run.done()
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, DRAIN_S + 2)
    assert len(provider.calls) == CONCURRENCY
    assert (await Campaign.get(id=pk)).lease_owner is None
    assert await by_status(pk) == {"SENT": CONCURRENCY, "PENDING": 30 - CONCURRENCY}
    assert await handed_on(redis, pk)
    await assert_consistent(pk)


# --------------------------------------------------------------- CampaignWorker


def test_worker_settings_register_the_jobs_the_sweep_and_room_to_drain(settings: Settings) -> None:
    s = Settings(database_url=settings.database_url, worker_max_campaigns=4, worker_drain_timeout_s=7.5)
    options = worker_settings(s)
    functions = {f.name: f for f in options["functions"]}
    assert set(functions) == {JOB_RUN_CAMPAIGN, JOB_START_SCHEDULED}
    assert functions[JOB_RUN_CAMPAIGN].timeout_s == RUN_TIMEOUT_S  # a run is not cut off by arq's 300 s
    (cron,) = options["cron_jobs"]
    assert cron.name == JOB_SWEEP and cron.unique and cron.run_at_startup
    assert cron.second == set(range(0, 60, int(SWEEP_EVERY_S)))
    assert options["queue_name"] == QUEUE and options["keep_result"] == 0
    assert options["max_jobs"] > s.worker_max_campaigns  # room for the sweep and starts
    assert options["job_completion_wait"] > s.worker_drain_timeout_s  # arq waits for the drain
    assert worker_settings(s, max_jobs=1, handle_signals=False)["max_jobs"] == 1


async def test_the_worker_runs_the_job_a_transition_enqueued_and_the_job_id_is_free_again(
    api: Api, fast: Settings, redis: ArqRedis, effects: LifecycleEffects
) -> None:
    provider = ScriptedProvider()
    async with running_worker(fast, provider) as running:
        pk = await queued(api, effects, n=12)
        job_id = (await run_jobs(redis, pk))[0]
        await until(lambda: _completed(pk), what="campaign completed")
        assert len(provider.calls) == 12
        await until(lambda: running.worker.jobs_complete == 1, what="job finished")
        # no result is kept: the same state can be rung again (the sweep does, for a
        # job that found the lease taken), and its job runs and finds nothing to do
        assert await redis.enqueue_job(JOB_RUN_CAMPAIGN, pk, _job_id=job_id) is not None
        await until(lambda: running.worker.jobs_complete == 2, what="job ran again")
    assert len(provider.calls) == 12
    await assert_consistent(pk)


async def test_sigterm_stops_the_runs_drains_their_calls_and_hands_the_campaigns_on(
    api: Api, fast: Settings, redis: ArqRedis, effects: LifecycleEffects, gate: asyncio.Event
) -> None:
    provider = ScriptedProvider(gate=gate)
    pk = await queued(api, effects, n=30)
    async with running_worker(fast, provider) as running:
        await until(lambda: provider.in_flight == CONCURRENCY, what="calls in flight")
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)  # the worker's handler
        os.kill(os.getpid(), signal.SIGTERM)
        signalled = time.monotonic()
        await until(lambda: running.runner.closing, timeout=1, what="signal handled")
        await asyncio.sleep(0.3)  # the window: calls in flight hold the drain; nothing new starts
        assert not running.task.done() and len(provider.calls) == CONCURRENCY
        gate.set()
        await until(lambda: running.task.done(), timeout=DRAIN_S + 2, what="worker ended")
        assert time.monotonic() - signalled < DRAIN_S + 1
        # the job ended by itself (drained), arq did not have to cancel it
        assert (running.worker.jobs_complete, running.worker.jobs_retried) == (1, 0)
    assert all(c.started <= signalled for c in provider.calls)
    c = await Campaign.get(id=pk)
    assert c.status is S.PROCESSING and c.lease_owner is None
    assert await by_status(pk) == {"SENT": CONCURRENCY, "PENDING": 30 - CONCURRENCY}
    assert await handed_on(redis, pk)
    # another worker takes the job at once and finishes: nobody waited for a lease to expire
    async with running_worker(fast, provider):
        await until(lambda: _completed(pk), what="the next worker completed it")
    assert called(provider) == sorted(await Message.filter(campaign_id=pk).values_list("id", flat=True))
    await assert_consistent(pk)


@pytest.mark.parametrize("recipients", [3, 30], ids=["slots-to-spare", "every-slot-busy"])
async def test_sigterm_with_calls_hung_past_the_drain_timeout_ends_in_time_and_leaves_them_in_doubt(
    api: Api, fast: Settings, redis: ArqRedis, effects: LifecycleEffects, gate: asyncio.Event, recipients: int
) -> None:
    provider = ScriptedProvider(gate=gate)  # never opened during the test: the provider hangs
    pk = await queued(api, effects, n=recipients)
    hanging = min(recipients, CONCURRENCY)
    async with running_worker(fast, provider) as running:
        await until(lambda: provider.in_flight == hanging, what="calls in flight")
        os.kill(os.getpid(), signal.SIGTERM)
        signalled = time.monotonic()
        await until(lambda: running.task.done(), timeout=DRAIN_S + 1.5, what="worker ended")
        took = time.monotonic() - signalled
        assert DRAIN_S - 0.05 <= took < DRAIN_S + 1.0  # it waited the drain timeout, and no longer
        assert (running.worker.jobs_complete, running.worker.jobs_retried) == (1, 0)  # ended, not cancelled
    assert len(provider.calls) == hanging
    c = await Campaign.get(id=pk)
    assert c.lease_owner is None and await handed_on(redis, pk)
    hung = sorted(c.message_id for c in provider.calls)
    sending = await Message.filter(campaign_id=pk, status=MessageStatus.SENDING).values_list("id", flat=True)
    assert sorted(sending) == hung  # the provider may have them: never marked sent, failed or pending
    assert await by_status(pk) == {"SENDING": hanging} | (
        {"PENDING": recipients - hanging} if recipients > hanging else {}
    )
    # the next run puts them in doubt instead of calling them again
    store = SqlSendingStore()
    lease = await store.acquire_lease(pk, "next-worker", 15)
    assert lease is not None
    assert await Message.filter(id__in=hung, doubt_at__isnull=True).count() == 0
    claimed = {m.id for m in await store.claim(lease, 100)}
    assert len(claimed) == recipients - hanging and not claimed & set(hung)
    await store.release_lease(lease)


async def test_drain_waits_for_the_runs_within_its_bound_and_takes_no_new_job(
    api: Api, fast: Settings, redis: ArqRedis, effects: LifecycleEffects, gate: asyncio.Event
) -> None:
    """`campaigns dev` handles the signals itself and calls drain(within) before closing."""
    provider = ScriptedProvider(gate=gate)
    pk = await queued(api, effects, n=30)
    async with running_worker(fast, provider, handle_signals=False) as running:
        await until(lambda: provider.in_flight == CONCURRENCY, what="calls in flight")
        started = time.monotonic()
        await asyncio.wait_for(running.worker.drain(within=0.4), 2)
        assert 0.4 - 0.02 <= time.monotonic() - started < 0.8  # bounded: the calls still hang
        assert len(provider.calls) == CONCURRENCY  # stopped: nothing new started
        later = await queued(api, effects, n=3)
        gate.set()
        await until(lambda: running.worker.jobs_complete == 1, what="the run drained")
        await asyncio.sleep(0.5)  # the window: five polls in which no new job may start
        assert await status_of(later) is S.QUEUED and len(await run_jobs(redis, later)) == 1
    assert len(provider.calls) == CONCURRENCY
    assert (await Campaign.get(id=pk)).lease_owner is None and await handed_on(redis, pk)
    assert await by_status(pk) == {"SENT": CONCURRENCY, "PENDING": 30 - CONCURRENCY}


async def test_a_redis_outage_pauses_the_polling_not_the_runs_and_the_worker_takes_jobs_again(
    api: Api,
    fast: Settings,
    own_redis: RedisServer,
    effects: LifecycleEffects,
    gate: asyncio.Event,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = ScriptedProvider(gate=gate)
    pk = await queued(api, effects, n=30)

    def told() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "campaigns.worker"]

    with caplog.at_level(logging.WARNING, logger="campaigns.worker"):
        async with running_worker(fast, provider) as running:
            await until(lambda: provider.in_flight == CONCURRENCY, what="calls in flight")
            own_redis.stop()
            await until(lambda: running.worker._redis_down, what="the worker noticed")
            await asyncio.sleep(1.2)  # the window: the failed polls must not end the worker
            assert not running.task.done()
            gate.set()  # the run goes on without Redis, paced locally, and finishes
            await until(lambda: _completed(pk), what="the run completed during the outage")
            assert own_redis.proc is None and not running.task.done()
            own_redis.start()
            later = await queued(api, effects, n=3)  # rung once Redis is back
            await until(lambda: _completed(later), timeout=4, what="a job taken after the outage")
            await until(lambda: "worker has Redis again" in told(), what="the worker said so")
            assert not running.task.done()
    assert len(provider.calls) == 33 and len(set(called(provider))) == 33
    await assert_consistent(pk)
    assert sum("worker lost Redis" in m for m in told()) == 1  # once per outage, not once per poll


# ------------------------------------------------ a campaign whose messages all wait


async def test_a_run_whose_messages_all_wait_ends_without_its_lease_and_wakes_when_they_are_due(
    api: Api, fast: Settings, redis: ArqRedis
) -> None:
    pk = await queued(api, None, n=3)
    first = await Message.filter(campaign_id=pk).order_by("id").first()
    assert first is not None
    limited = first.id

    def marketing_limit(request: SendRequest, attempt: int) -> SendResult:
        if request.message_id == limited:
            return SendResult(Outcome.PERMANENT, error_code=MARKETING_LIMIT, error_message="ecosystem engagement")
        return SendResult(Outcome.ACCEPTED, provider_message_id=f"wamid.{request.message_id}")

    provider = ScriptedProvider(script=marketing_limit)
    async with runner_of(fast, provider) as runner:
        assert await runner.run(pk) == "waiting"
        c = await Campaign.get(id=pk)
        # still PROCESSING, no lease held, and it says why and until when
        assert (c.status, c.lease_owner) == (S.PROCESSING, None)
        assert c.next_send_at is not None and c.status_reason is not None and "131049" in c.status_reason
        assert await by_status(pk) == {"SENT": 2, "PENDING": 1}
        # woken by a run job deferred to that time (the sweep's re-queue is the fallback)
        wake = wake_job_id(pk, c.version, c.lease_fence, c.next_send_at.timestamp())
        score = await redis.zscore(QUEUE, wake)
        assert score is not None and abs(score / 1000 - c.next_send_at.timestamp()) < 1
        # its time comes: the next run sends it and completes the campaign
        await Message.filter(id=limited).update(not_before=datetime.now(UTC) - timedelta(seconds=1))
        provider.script = accept
        assert await runner.run(pk) == "completed"
    c = await Campaign.get(id=pk)
    assert (c.status, c.next_send_at, c.status_reason) == (S.COMPLETED, None, None)
    assert called(provider).count(limited) == 2
    assert (await assert_consistent(pk))["sent"] == 3
