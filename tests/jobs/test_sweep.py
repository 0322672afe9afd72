"""The sweep against a real Redis queue and a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_asyncio
from arq.constants import job_key_prefix

from domain.ids import expect_id
from domain.lifecycle import CampaignStatus
from domain.sending import Recorded, RecordedStatus
from domain.waiting import MARKETING_LIMIT
from jobs.control import ControlListener
from jobs.effects import lazy_redis
from jobs.sweep import sweep
from jobs.worker import Runner
from models import Campaign, Message
from providers.whatsapp import provider_from
from runtime.keys import QUEUE
from settings import Settings
from tests.conftest import Api
from tests.schema.states import campaign_in
from tests.services.test_receipts import assert_consistent


@pytest_asyncio.fixture
async def ctx(settings: Settings) -> AsyncIterator[dict[str, Any]]:
    redis = lazy_redis(settings.redis_url or "")
    fast = Settings(database_url=settings.database_url, redis_url=settings.redis_url, reconcile_window_s=0.0)
    runner = Runner(fast, redis, provider_from(fast, 1), ControlListener(redis))
    try:
        yield {"runner": runner, "redis": redis}
    finally:
        await runner.provider.close()
        await redis.aclose()


async def queued_jobs(ctx: dict[str, Any], pk: int) -> list[str]:
    ids = await ctx["redis"].zrange(QUEUE, 0, -1)
    return [i.decode() for i in ids if i.decode().startswith(f"campaigns:run:{pk}:")]


async def waiting_for_a_worker(api: Api) -> int:
    """QUEUED for a while, nobody leases it, and its run job is gone (Redis lost it)."""
    view = await campaign_in(api, CampaignStatus.QUEUED, recipients=3)
    pk = expect_id(view["id"], "Campaign")
    await Campaign.filter(id=pk).update(updated_at=datetime.now(UTC) - timedelta(minutes=1))
    return pk


async def test_a_campaign_waiting_for_a_worker_has_one_run_job_however_many_sweeps(
    api: Api, ctx: dict[str, Any]
) -> None:
    """Finding 10: the sweep enqueued another run job every 5 s for each QUEUED campaign
    that waited for a free worker."""
    pk = await waiting_for_a_worker(api)
    for job_id in await queued_jobs(ctx, pk):  # Redis lost the one its transition enqueued
        await ctx["redis"].zrem(QUEUE, job_id)
        await ctx["redis"].delete(job_key_prefix + job_id)
    for _ in range(4):
        report = await sweep(ctx)
        assert report["requeued"] >= 1
    assert len(await queued_jobs(ctx, pk)) == 1


async def test_the_sweep_completes_a_campaign_its_receipts_settled_and_settles_a_dead_runs_rows(
    api: Api, ctx: dict[str, Any]
) -> None:
    view = await campaign_in(api, CampaignStatus.PROCESSING, recipients=4)
    pk = expect_id(view["id"], "Campaign")
    store = ctx["runner"].store
    lease = await store.acquire_lease(pk, "dead", 15)
    claimed = [c.id for c in await store.claim(lease, 4)]
    await store.record(lease, [Recorded(i, RecordedStatus.SENT, f"wamid.{i}") for i in claimed[:3]])
    # the worker died with one call in flight; its lease ran out long ago
    await Campaign.filter(id=pk).update(
        lease_expires_at=datetime.now(UTC) - timedelta(minutes=1), updated_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    first = await sweep(ctx)  # in doubt from now: no receipt flowed after it, so it fails in_doubt
    assert first["failed_in_doubt"] >= 1
    assert (await Message.get(id=claimed[3])).error_code == "in_doubt"
    await sweep(ctx)
    campaign = await Campaign.get(id=pk)
    assert campaign.status is CampaignStatus.COMPLETED
    counters = await assert_consistent(pk)
    assert (counters["sent"], counters["failed"], counters["pending"]) == (3, 1, 0)


async def test_a_campaign_whose_messages_wait_is_left_alone_until_one_is_due(api: Api, ctx: dict[str, Any]) -> None:
    view = await campaign_in(api, CampaignStatus.PROCESSING, recipients=2)
    pk = expect_id(view["id"], "Campaign")
    store = ctx["runner"].store
    lease = await store.acquire_lease(pk, "run", 15)
    first, second = await store.claim(lease, 2)
    await store.record(
        lease,
        [
            Recorded(first.id, RecordedStatus.SENT, f"wamid.{first.id}"),
            Recorded(second.id, RecordedStatus.FAILED, None, MARKETING_LIMIT, "later"),
        ],
    )
    await store.release_lease(lease)  # the run ended WAITING
    await Campaign.filter(id=pk).update(updated_at=datetime.now(UTC) - timedelta(minutes=1))
    for job_id in await queued_jobs(ctx, pk):
        await ctx["redis"].zrem(QUEUE, job_id)
    await sweep(ctx)
    c = await Campaign.get(id=pk)
    assert c.status is CampaignStatus.PROCESSING and c.next_send_at is not None  # not completed, noted
    assert await queued_jobs(ctx, pk) == []  # nothing is due: no run
    await Message.filter(id=second.id).update(not_before=datetime.now(UTC) - timedelta(seconds=1))
    await sweep(ctx)
    assert len(await queued_jobs(ctx, pk)) == 1  # due now: its run is queued
    await assert_consistent(pk)
