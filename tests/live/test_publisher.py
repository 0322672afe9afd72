"""live/publisher.py against a real Redis and database: touches are coalesced into
absolute snapshots read from the database, status changes go out at once on both
channels, and Redis errors never reach the caller."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from redis.asyncio import Redis

from domain.ids import expect_id
from domain.lifecycle import Action, CampaignStatus, transition
from live.publisher import ProgressPublisher
from models import Campaign
from runtime.keys import progress_channel, workspace_channel
from settings import Settings
from tests.conftest import Api
from tests.schema.states import campaign_in


@pytest_asyncio.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url or "")
    try:
        yield client
    finally:
        await client.aclose()


async def listening(redis: Redis, *channels: str) -> Any:
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(*channels)
    return pubsub


async def next_event(pubsub: Any, timeout: float = 2.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            message = await pubsub.get_message(timeout=timeout)
            if message is not None:
                return dict(json.loads(message["data"]))


async def test_touches_are_coalesced_into_one_snapshot_read_from_the_database(api: Api, redis: Redis) -> None:
    view = await campaign_in(api, CampaignStatus.PROCESSING, recipients=3)
    pk = expect_id(view["id"], "Campaign")
    pubsub = await listening(redis, progress_channel(pk))
    publisher = ProgressPublisher(redis, interval=0.2)
    await publisher.start()
    try:
        for _ in range(50):
            publisher.touched([pk])
        first = await next_event(pubsub)
        assert first["campaign_id"] == pk and first["stats"]["total"] == 3 and first["status"] == "PROCESSING"
        await Campaign.filter(id=pk).update(pending=2, sent=1)  # the numbers move (as a worker moves them)
        publisher.touched([pk])
        second = await next_event(pubsub)
        assert (second["stats"]["pending"], second["stats"]["sent"]) == (2, 1)  # absolute, from the database
        assert second["at"] >= first["at"]
        assert await pubsub.get_message(timeout=0.4) is None  # 51 touches, two events
    finally:
        await publisher.close()
        await pubsub.aclose()


async def test_a_status_change_goes_out_at_once_on_the_workspace_and_campaign_channels(api: Api, redis: Redis) -> None:
    view = await campaign_in(api, CampaignStatus.PROCESSING, recipients=2)
    pk = expect_id(view["id"], "Campaign")
    campaign = await Campaign.get(id=pk)
    pubsub = await listening(redis, workspace_channel(campaign.workspace_id), progress_channel(pk))
    try:
        await ProgressPublisher(redis).status_changed(campaign, transition(CampaignStatus.PROCESSING, Action.PAUSE))
        events = [await next_event(pubsub), await next_event(pubsub)]
        kinds = {e["type"]: e for e in events}
        assert kinds["status"]["from_status"] == "PROCESSING" and kinds["status"]["to_status"] == "PAUSED"
        assert kinds["progress"]["campaign_id"] == pk
    finally:
        await pubsub.aclose()


async def test_redis_errors_never_reach_a_mutation_or_a_send(api: Api) -> None:
    view = await campaign_in(api, CampaignStatus.PROCESSING, recipients=1)
    campaign = await Campaign.get(id=expect_id(view["id"], "Campaign"))
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    publisher = ProgressPublisher(dead, interval=0.05)
    await publisher.start()
    await publisher.status_changed(campaign, transition(CampaignStatus.PROCESSING, Action.PAUSE))  # no raise
    publisher.touched([campaign.id])
    await asyncio.sleep(0.2)
    await publisher.close()  # the last flush fails quietly too
