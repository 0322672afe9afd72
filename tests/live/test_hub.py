"""live/hub.py: one Redis subscription fanned out to latest-wins slots, against a real
Redis (and the database, for what it re-reads after an outage)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest_asyncio
from redis.asyncio import Redis

from domain.events import ProgressEvent, StatsPayload
from live.hub import LiveHub, ProgressUpdate
from runtime.keys import progress_channel, workspace_channel
from settings import Settings


def event(campaign_id: int, processed: int, at: float, total: int = 1000) -> ProgressEvent:
    stats: StatsPayload = {
        "total": total,
        "pending": total - processed,
        "sent": processed,
        "delivered": 0,
        "read": 0,
        "replied": 0,
        "failed": 0,
        "cancelled": 0,
    }
    return {
        "type": "progress",
        "campaign_id": campaign_id,
        "workspace_id": 1,
        "status": "PROCESSING",
        "version": 3,
        "stats": stats,
        "at": at,
    }


@pytest_asyncio.fixture
async def hub(settings: Settings) -> AsyncIterator[LiveHub]:
    live = LiveHub(Redis.from_url(settings.redis_url or ""))
    await live.start()
    try:
        yield live
    finally:
        await live.close()
        await live.redis.aclose()


async def test_a_slot_holds_the_newest_update_only_and_older_reads_are_dropped() -> None:
    hub = LiveHub(Redis(host="127.0.0.1", port=1))  # never started: dispatch alone
    with hub.watch_campaign(9) as slot:
        now = time.time()
        for processed in (10, 20, 30):
            hub.dispatch(event(9, processed, now + processed / 100))
        hub.dispatch(event(9, 5, now - 10))  # read before the newest: two publishers raced
        update: ProgressUpdate = await asyncio.wait_for(slot.get(), 1)
        assert update.event["stats"]["sent"] == 30  # no backlog: the newest
        assert update.send_rate > 0


def test_the_send_rate_is_measured_over_the_last_seconds() -> None:
    hub = LiveHub(Redis(host="127.0.0.1", port=1))
    with hub.watch_campaign(3):
        hub.snapshot(event(3, 0, 100.0))
        assert hub.snapshot(event(3, 500, 101.0)).send_rate == 500.0
        assert hub.snapshot(event(3, 1500, 102.0)).send_rate == 750.0


async def test_events_published_on_redis_reach_the_slots_of_their_campaign_and_workspace(
    hub: LiveHub, settings: Settings
) -> None:
    publisher = Redis.from_url(settings.redis_url or "")
    try:
        with hub.watch_campaign(41) as mine, hub.watch_campaign(42) as other, hub.watch_workspace(1) as changes:
            await publisher.publish(progress_channel(41), json.dumps(event(41, 7, time.time())))
            change = {
                "type": "status",
                "campaign_id": 41,
                "workspace_id": 1,
                "name": "x",
                "from_status": "QUEUED",
                "to_status": "PROCESSING",
                "reason": None,
                "version": 2,
                "at": time.time(),
            }
            await publisher.publish(workspace_channel(1), json.dumps(change))
            assert (await asyncio.wait_for(mine.get(), 2)).event["stats"]["sent"] == 7
            assert (await asyncio.wait_for(changes.get(), 2))["to_status"] == "PROCESSING"
            await asyncio.sleep(0.1)
            assert not other._fresh.is_set()  # another campaign's slot heard nothing
    finally:
        await publisher.aclose()
