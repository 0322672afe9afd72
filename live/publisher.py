"""Publishing live numbers: workers (after each outcome flush) and the receipt applier
say a campaign's numbers moved; at most every `interval` seconds the publisher reads
the current numbers of those campaigns from the database (the truth) and publishes
one event each. Status changes are published at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable

from redis.asyncio import Redis

from domain.events import ProgressEvent
from domain.lifecycle import Transition
from live.events import progress_event, status_event
from live.snapshots import load_progress
from models import Campaign
from runtime.background import Background
from runtime.keys import progress_channel, workspace_channel

log = logging.getLogger("campaigns.progress")


class ProgressPublisher:
    def __init__(self, redis: Redis, interval: float = 0.25) -> None:
        self.redis = redis
        self.interval = interval
        self._dirty: set[int] = set()
        self._wake = asyncio.Event()
        self._background = Background("progress-publisher", self._loop, log)
        self._failing = False

    def touched(self, campaign_ids: Iterable[int]) -> None:
        """The numbers of these campaigns moved (no I/O here: called on hot paths)."""
        self._dirty.update(campaign_ids)
        self._wake.set()

    async def status_changed(self, campaign: Campaign, t: Transition, reason: str | None = None) -> None:
        event = status_event(
            campaign_id=campaign.id,
            workspace_id=campaign.workspace_id,
            name=campaign.name,
            from_status=t.source,
            to_status=t.target or t.source,
            reason=campaign.status_reason if reason is None else reason,
            version=campaign.version,
        )
        try:
            await self.redis.publish(workspace_channel(campaign.workspace_id), json.dumps(event))
            await self._publish(progress_event(campaign))
        except Exception:  # live numbers must never fail a mutation or a send
            log.exception("publishing the status change of campaign %s failed", campaign.id)

    async def start(self) -> None:
        self._background.start()

    async def close(self) -> None:
        await self._background.stop()
        try:
            await self.flush()  # the last numbers, so watchers end on the truth
        except Exception as exc:
            log.warning("publishing the last progress failed: %s", exc)

    async def flush(self) -> None:
        ids, self._dirty = self._dirty, set()
        try:
            for event in await load_progress(ids):
                await self._publish(event)
        except Exception:
            self._dirty |= ids  # publish them with the next round
            raise

    async def _publish(self, event: ProgressEvent) -> None:
        await self.redis.publish(progress_channel(event["campaign_id"]), json.dumps(event))

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                self._failing = False
            except Exception as exc:
                if not self._failing:  # once per outage, not four times a second
                    log.warning("publishing progress failed (%s); retrying", exc)
                self._failing = True
            await asyncio.sleep(self.interval)  # coalesce: a few events per second at most
