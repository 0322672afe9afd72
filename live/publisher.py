"""Publishing live numbers: workers and the receipt webhook say a campaign's numbers
moved; at most every `interval` seconds the publisher reads the current numbers of
those campaigns from the database (the truth) and publishes one event each.
Status changes are published at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis

from domain.events import STAT_FIELDS, ProgressEvent, StatsPayload, StatusEvent
from domain.lifecycle import Transition
from jobs.keys import progress_channel, workspace_channel
from models import Campaign
from services import db

log = logging.getLogger("campaigns.progress")

_COLUMNS = "id, workspace_id, status, version, " + ", ".join(f'"{f}"' for f in STAT_FIELDS)


def progress_event(row: Any) -> ProgressEvent:
    """From a campaign row (dict from SQL, or a model)."""
    get = row.__getitem__ if isinstance(row, dict) else row.__getattribute__
    stats = StatsPayload(
        total=int(get("total")),
        pending=int(get("pending")),
        sent=int(get("sent")),
        delivered=int(get("delivered")),
        read=int(get("read")),
        failed=int(get("failed")),
        cancelled=int(get("cancelled")),
    )
    status = get("status")
    return {
        "type": "progress",
        "campaign_id": int(get("id")),
        "workspace_id": int(get("workspace_id")),
        "status": str(getattr(status, "value", status)),
        "version": int(get("version")),
        "stats": stats,
        "at": time.time(),
    }


async def own_progress(workspace_id: int, campaign_id: int) -> ProgressEvent | None:
    """A campaign's snapshot if it is the workspace's (a subscription's first): one
    plain read, no ORM object (an ORM lookup cost about a third of a subscribe)."""
    sql = f"SELECT {_COLUMNS} FROM campaign WHERE id = ? AND workspace_id = ?"
    rows = await db.fetch(db.client(), sql, [campaign_id, workspace_id])
    return progress_event(rows[0]) if rows else None


async def load_progress(campaign_ids: Iterable[int]) -> list[ProgressEvent]:
    ids = sorted(set(campaign_ids))
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    rows = await db.fetch(db.client(), f"SELECT {_COLUMNS} FROM campaign WHERE id IN ({marks})", ids)
    return [progress_event(r) for r in rows]


class ProgressPublisher:
    def __init__(self, redis: Redis, interval: float = 0.25) -> None:
        self.redis = redis
        self.interval = interval
        self._dirty: set[int] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def touched(self, campaign_ids: Iterable[int]) -> None:
        """The numbers of these campaigns moved (no I/O here: called on hot paths)."""
        self._dirty.update(campaign_ids)
        self._wake.set()

    async def status_changed(self, campaign: Campaign, t: Transition, reason: str | None = None) -> None:
        event: StatusEvent = {
            "type": "status",
            "campaign_id": campaign.id,
            "workspace_id": campaign.workspace_id,
            "name": campaign.name,
            "from_status": t.source.value,
            "to_status": (t.target or t.source).value,
            "reason": campaign.status_reason if reason is None else reason,
            "version": campaign.version,
            "at": time.time(),
        }
        try:
            await self.redis.publish(workspace_channel(campaign.workspace_id), json.dumps(event))
            await self._publish(progress_event(campaign))
        except Exception:  # live numbers must never fail a mutation or a send
            log.exception("publishing the status change of campaign %s failed", campaign.id)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
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
