"""What a committed status change sets in motion outside the database (jobs/effects.py),
against a real Redis and the real test database.

Each test gets a redis-server of its own (`own_redis`): the queue then holds only its
jobs, and pub/sub, which Redis shares across its numbered databases, reaches no other
listener of `campaigns:control:*` (another test session's worker would otherwise take
these stops for its own campaigns of the same ids, or answer them). Status changes
are committed with the real `apply_action`, the effects hooked in as the API hooks them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from arq import ArqRedis
from arq.connections import create_pool
from arq.jobs import Job
from redis.exceptions import ConnectionError as RedisConnectionError

from domain.ids import expect_id
from domain.lease import MAX_PROOF_S, StopConfirmation
from domain.lifecycle import Action, CampaignStatus, Transition
from jobs.control import ControlAck, ControlListener
from jobs.effects import ACK_WAIT_S, LifecycleEffects, lazy_redis, redis_settings
from live.publisher import ProgressPublisher
from models import Campaign
from runtime.embedded_redis import EmbeddedRedis
from runtime.keys import (
    CONTROL_PATTERN,
    JOB_RUN_CAMPAIGN,
    JOB_START_SCHEDULED,
    QUEUE,
    progress_channel,
    run_job_id,
    start_job_id,
    workspace_channel,
)
from services.sending_store import SqlSendingStore
from services.transitions import Applied, apply_action, apply_system_action
from tests.conftest import Api
from tests.e2e.conftest import RedisServer

S = CampaignStatus


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def effects(redis: ArqRedis) -> LifecycleEffects:
    return LifecycleEffects(redis, ProgressPublisher(redis))


def closed_port_url() -> str:
    """A Redis URL nothing listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{s.getsockname()[1]}/0"


async def draft(api: Api, recipients: int = 3) -> int:
    view = await api.ready_campaign(recipients)
    return expect_id(view["id"], "Campaign")


async def act(api: Api, pk: int, action: Action, effects: LifecycleEffects | None, **kw: Any) -> Applied:
    """A user action committed, then its effects run: what the API's mutations do."""
    after = effects.after_transition if effects is not None else None
    return await apply_action(api.principal, pk, action, after=after, **kw)


async def sending(api: Api, owner: str = "worker-1") -> tuple[int, ControlAck]:
    """A PROCESSING campaign whose live lease `owner` holds (nobody really sends it)."""
    pk = await draft(api)
    await act(api, pk, Action.SEND_NOW, None)
    lease = await SqlSendingStore().acquire_lease(pk, owner, 15)
    assert lease is not None
    return pk, {"owner": lease.owner, "fence": lease.fence}


async def run_jobs(redis: ArqRedis, pk: int) -> dict[str, float]:
    """The campaign's run jobs in the queue: job id -> score (ms)."""
    queued = await redis.zrange(QUEUE, 0, -1, withscores=True)
    return {i.decode(): score for i, score in queued if i.decode().startswith(f"campaigns:run:{pk}:")}


async def start_jobs(redis: ArqRedis, pk: int) -> dict[str, float]:
    queued = await redis.zrange(QUEUE, 0, -1, withscores=True)
    return {i.decode(): score for i, score in queued if i.decode().startswith(f"campaigns:start:{pk}:")}


@pytest_asyncio.fixture
async def control_messages(redis: ArqRedis) -> AsyncIterator[list[dict[str, Any]]]:
    """Every control message published while the test runs, as a worker receives it."""
    seen: list[dict[str, Any]] = []
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe(CONTROL_PATTERN)

    async def read() -> None:
        async for raw in pubsub.listen():
            seen.append({"channel": raw["channel"].decode(), **json.loads(raw["data"])})

    reader = asyncio.create_task(read())
    try:
        yield seen
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await pubsub.aclose()


@pytest_asyncio.fixture
async def listeners(redis: ArqRedis) -> AsyncIterator[Callable[[], Awaitable[ControlListener]]]:
    """Started control listeners (one per simulated worker process), closed at the end."""
    started: list[ControlListener] = []

    async def new() -> ControlListener:
        listener = ControlListener(redis)
        await listener.start(ready_within=3)
        started.append(listener)
        return listener

    try:
        yield new
    finally:
        for listener in started:
            await listener.close()


# ------------------------------------------------------------------ jobs it enqueues


async def test_a_transition_to_queued_enqueues_one_run_job_per_campaign_state(
    api: Api, redis: ArqRedis, effects: LifecycleEffects
) -> None:
    pk = await draft(api)
    queued = await act(api, pk, Action.SEND_NOW, effects)
    assert queued.stop is None
    c = queued.campaign
    first = run_job_id(pk, c.version, c.lease_fence)
    jobs = await run_jobs(redis, pk)
    assert list(jobs) == [first]
    assert abs(jobs[first] - time.time() * 1000) < 5_000  # due now, not deferred
    info = await Job(first, redis, _queue_name=QUEUE).info()
    assert info is not None and (info.function, info.args) == (JOB_RUN_CAMPAIGN, (pk,))
    # the same state rung again (the sweep, a draining worker) is the same job
    await effects.enqueue_run(pk, c.version, c.lease_fence)
    await effects.enqueue_run(pk, c.version, c.lease_fence)
    assert list(await run_jobs(redis, pk)) == [first]
    # a new state (paused, then resumed: a new version) rings a job of its own
    await act(api, pk, Action.PAUSE, effects)
    resumed = (await act(api, pk, Action.RESUME, effects)).campaign
    second = run_job_id(pk, resumed.version, resumed.lease_fence)
    assert second != first and set(await run_jobs(redis, pk)) == {first, second}


async def test_schedule_enqueues_a_start_deferred_to_its_time_under_its_token(
    api: Api, redis: ArqRedis, effects: LifecycleEffects
) -> None:
    pk = await draft(api)
    at = datetime.now(UTC) + timedelta(hours=1)
    scheduled = (await act(api, pk, Action.SCHEDULE, effects, scheduled_at=at)).campaign
    token = scheduled.schedule_token
    assert token
    jobs = await start_jobs(redis, pk)
    assert list(jobs) == [start_job_id(pk, token)]
    assert abs(jobs[start_job_id(pk, token)] - at.timestamp() * 1000) < 1_000  # deferred to its time
    info = await Job(start_job_id(pk, token), redis, _queue_name=QUEUE).info()
    assert info is not None and (info.function, info.args) == (JOB_START_SCHEDULED, (pk, token))
    assert await run_jobs(redis, pk) == {}

    later = at + timedelta(hours=1)
    moved = (await act(api, pk, Action.RESCHEDULE, effects, scheduled_at=later)).campaign
    assert moved.schedule_token and moved.schedule_token != token
    jobs = await start_jobs(redis, pk)
    # a job of its own at the new time; the old one stays, and finds a stale token
    assert set(jobs) == {start_job_id(pk, token), start_job_id(pk, moved.schedule_token)}
    assert abs(jobs[start_job_id(pk, moved.schedule_token)] - later.timestamp() * 1000) < 1_000

    # the scheduler's START (a system transition) rings the run, as a user's would
    started = await apply_system_action(pk, Action.START, actor="scheduler", after=effects.after_transition)
    assert started is not None and started.status is S.QUEUED
    assert list(await run_jobs(redis, pk)) == [run_job_id(pk, started.version, started.lease_fence)]


async def test_a_status_change_is_published_to_the_workspace_and_the_campaign(
    api: Api, redis: ArqRedis, effects: LifecycleEffects
) -> None:
    pk = await draft(api)
    workspace = api.principal.workspace_id
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(workspace_channel(workspace), progress_channel(pk))
    try:
        queued = (await act(api, pk, Action.SEND_NOW, effects)).campaign
        got: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 3
        while len(got) < 2 and time.monotonic() < deadline:
            raw = await pubsub.get_message(timeout=0.2)
            if raw is not None:
                got[raw["channel"].decode()] = json.loads(raw["data"])
        status, progress = got[workspace_channel(workspace)], got[progress_channel(pk)]
        assert status["type"] == "status" and status["campaign_id"] == pk
        assert (status["from_status"], status["to_status"], status["version"]) == ("DRAFT", "QUEUED", queued.version)
        assert progress["type"] == "progress" and progress["status"] == "QUEUED"
        assert progress["stats"]["total"] == progress["stats"]["pending"] == 3

        # a transition that keeps the status publishes nothing (window: 0.3 s)
        await effects.after_transition(queued, Transition(S.QUEUED, Action.DUPLICATE, S.QUEUED))
        assert await pubsub.get_message(timeout=0.3) is None
    finally:
        await pubsub.aclose()


# ----------------------------------------------------------------- Redis unreachable


async def test_with_redis_unreachable_no_effect_raises_and_every_change_stands(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    dead = lazy_redis(closed_port_url())  # connects on first use: building it does not fail
    effects = LifecycleEffects(dead, ProgressPublisher(dead))
    try:
        pk, other = await draft(api), await draft(api)
        steps: list[tuple[int, Action, dict[str, Any], CampaignStatus]] = [
            (pk, Action.SEND_NOW, {}, S.QUEUED),
            (pk, Action.PAUSE, {}, S.PAUSED),  # nobody leases it: no worker to wait for
            (pk, Action.RESUME, {}, S.QUEUED),
            (other, Action.SCHEDULE, {"scheduled_at": datetime.now(UTC) + timedelta(hours=1)}, S.SCHEDULED),
            (other, Action.RESCHEDULE, {"scheduled_at": datetime.now(UTC) + timedelta(hours=2)}, S.SCHEDULED),
            (other, Action.CANCEL, {}, S.CANCELLED),
        ]
        with caplog.at_level(logging.WARNING):
            for campaign_id, action, kw, status in steps:
                started = time.monotonic()
                applied = await act(api, campaign_id, action, effects, **kw)
                assert time.monotonic() - started < 1.0, action  # refused at once, no waiting
                assert applied.campaign.status is status
                assert (await Campaign.get(id=campaign_id)).status is status  # committed, and it stays
                assert applied.stop in (None, StopConfirmation.NOT_SENDING)
        # the lost jobs are left to the sweep, and the log says so
        told = [r.getMessage() for r in caplog.records if r.name == "campaigns.effects"]
        assert any(f"queueing the run of campaign {pk}" in m and "the sweep will do it" in m for m in told), told
        assert any(f"scheduling the start of campaign {other}" in m for m in told), told
        assert any(r.name == "campaigns.progress" for r in caplog.records)  # publishing failed, quietly
    finally:
        await dead.aclose()


@pytest.mark.parametrize("redis_url", [None, "closed-port"], ids=["no-redis-configured", "redis-unreachable"])
async def test_without_redis_a_stop_waits_out_only_what_is_left_of_the_proof(api: Api, redis_url: str | None) -> None:
    """No ack can come: the stop holds once the longest lease proof that predates the
    commit has run out, counted from the commit, not from the call."""
    arq = lazy_redis(closed_port_url()) if redis_url else None
    effects = LifecycleEffects(arq)
    try:
        pk, _ = await sending(api)
        paused = (await act(api, pk, Action.PAUSE, None)).campaign  # committed; its lease is still live
        started = time.monotonic()
        confirmed = await effects.stop_worker(paused, Action.PAUSE, committed=started - (MAX_PROOF_S - 0.4))
        waited = time.monotonic() - started
        assert confirmed is StopConfirmation.LEASE_PROOF
        assert 0.4 - 0.02 <= waited < 0.9
        # a commit older than any proof: nothing to wait for
        started = time.monotonic()
        confirmed = await effects.stop_worker(paused, Action.PAUSE, committed=started - 2 * MAX_PROOF_S)
        assert confirmed is StopConfirmation.LEASE_PROOF and time.monotonic() - started < 0.3
    finally:
        if arq is not None:
            await arq.aclose()


# ------------------------------------------------------------------- stopping a worker


async def test_a_campaign_without_a_live_lease_stops_at_once_and_no_worker_is_told(
    api: Api, effects: LifecycleEffects, control_messages: list[dict[str, Any]]
) -> None:
    never_leased = await draft(api)
    await act(api, never_leased, Action.SEND_NOW, effects)
    started = time.monotonic()
    paused = await act(api, never_leased, Action.PAUSE, effects)
    assert paused.stop is StopConfirmation.NOT_SENDING and time.monotonic() - started < 0.5

    expired, _ = await sending(api)
    await Campaign.filter(id=expired).update(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    started = time.monotonic()
    cancelled = await act(api, expired, Action.CANCEL, effects)
    assert cancelled.stop is StopConfirmation.NOT_SENDING and time.monotonic() - started < 0.5
    await asyncio.sleep(0.3)  # the window in which a control message would have arrived
    assert control_messages == []


async def test_a_stop_returns_on_the_lease_holders_ack_and_not_on_another_workers(
    api: Api,
    effects: LifecycleEffects,
    listeners: Callable[[], Awaitable[ControlListener]],
) -> None:
    """A stale run job elsewhere answers at once for a lease it does not hold; the
    holder answers once its calls in flight are done (here 0.8 s): the stop returns on
    the holder's answer, not before."""
    pk, holder = await sending(api)
    stale, sender = await listeners(), await listeners()
    stale_ack: ControlAck = {"owner": "worker-2", "fence": holder["fence"] + 7}
    stale.register(pk, lambda action: None, lambda: stale_ack)
    stopped: list[tuple[Action, float]] = []

    def stop(action: Action) -> Awaitable[None]:
        stopped.append((action, time.monotonic()))
        return asyncio.sleep(0.8)  # the calls in flight finishing

    sender.register(pk, stop, lambda: holder)
    started = time.monotonic()
    paused = await act(api, pk, Action.PAUSE, effects)
    took = time.monotonic() - started
    assert paused.stop is StopConfirmation.ACKNOWLEDGED
    assert paused.campaign.status is S.PAUSED
    assert [a for a, _ in stopped] == [Action.PAUSE]
    assert 0.8 <= took < 0.8 + 0.7  # after the holder's calls finished; not the proof's 3 s


async def test_a_stop_nobody_answers_waits_for_the_ack_then_out_the_proof(
    api: Api, redis: ArqRedis, effects: LifecycleEffects, control_messages: list[dict[str, Any]]
) -> None:
    """The holder got the message but never answers (frozen; here a subscriber that only
    reads): the stop returns when the lease proof from before the commit has run out,
    not earlier, and not much later."""
    pk, _ = await sending(api)
    started = time.monotonic()
    cancelled = await act(api, pk, Action.CANCEL, effects)
    took = time.monotonic() - started
    assert cancelled.stop is StopConfirmation.LEASE_PROOF
    assert took >= max(ACK_WAIT_S, MAX_PROOF_S) - 0.05
    assert took < MAX_PROOF_S + 0.6
    assert [(m["channel"], m["action"]) for m in control_messages] == [(f"campaigns:control:{pk}", "CANCEL")]
    assert (await Campaign.get(id=pk)).status is S.CANCELLED


async def test_only_a_pause_or_cancel_of_an_active_campaign_stops_a_worker(
    api: Api, effects: LifecycleEffects, control_messages: list[dict[str, Any]]
) -> None:
    """A PAUSED campaign whose lease is still live (its run winding down) is cancelled
    without waiting: the pause already stopped that run."""
    pk, _ = await sending(api)
    await act(api, pk, Action.PAUSE, None)
    started = time.monotonic()
    cancelled = await act(api, pk, Action.CANCEL, effects)
    assert cancelled.stop is None and time.monotonic() - started < 0.5
    # nor do the worker's own ends of a run
    done, _ = await sending(api)
    completed = await apply_system_action(done, Action.COMPLETE, actor="worker", after=effects.after_transition)
    assert completed is not None and completed.status is S.COMPLETED
    await asyncio.sleep(0.3)  # the window in which a control message would have arrived
    assert control_messages == []


# --------------------------------------------------------------------- lazy_redis


async def test_lazy_redis_starts_without_redis_and_reconnects_after_an_outage(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)  # a port of its own, not listened on yet
    pool = lazy_redis(server.url)
    try:
        with pytest.raises(RedisConnectionError):
            await pool.ping()
        server.start()
        assert await pool.ping()
        job = await pool.enqueue_job(JOB_RUN_CAMPAIGN, 1, _job_id="campaigns:run:1:1:0")
        assert job is not None and await pool.zrange(QUEUE, 0, -1) == [b"campaigns:run:1:1:0"]  # arq's queue is ours
        server.stop()
        with pytest.raises(RedisConnectionError):
            await pool.ping()
        server.start()
        assert await pool.ping()  # the same pool, connected again
    finally:
        await pool.aclose()
        server.stop()


async def test_lazy_redis_has_no_read_timeout_for_blocking_reads(redis: ArqRedis) -> None:
    """The live hub's subscription blocks on this pool for as long as nothing happens:
    a read timeout (say, the connect timeout's 2 s) would break every quiet moment."""
    waiter: asyncio.Task[Any] = asyncio.create_task(redis.blpop(["campaigns:test:blocking"], timeout=10))  # type: ignore[arg-type]
    await asyncio.sleep(2.3)  # longer than the connect timeout: the read must still be waiting
    assert not waiter.done()
    await redis.rpush("campaigns:test:blocking", "x")  # type: ignore[misc]
    assert await asyncio.wait_for(waiter, 2) == (b"campaigns:test:blocking", b"x")


async def test_redis_settings_reach_an_embedded_redis_on_its_unix_socket(tmp_path: Path) -> None:
    embedded = EmbeddedRedis(tmp_path / "redis")
    url = embedded.start()
    try:
        settings = redis_settings(url)
        assert settings.unix_socket_path == str(embedded.socket.resolve())
        pool = await create_pool(settings)  # the worker's connection (arq insists on a ping)
        try:
            assert await pool.ping()
        finally:
            await pool.aclose()
        assert redis_settings("redis://127.0.0.1:6390/4").port == 6390
        assert redis_settings("redis://127.0.0.1:6390/4").database == 4
    finally:
        embedded.stop()
