"""Fan-out of live events in one API process: ONE Redis subscription, many subscribers.

Each subscriber owns a latest-wins slot: an event replaces what the slot holds, so a
slow client gets the newest snapshot when it next reads, never a backlog, and never
holds anyone else up (publishing to a slot is a dict write and an Event.set()).
Status changes keep one entry per campaign, in arrival order.

After a Redis outage the subscription is rebuilt and every watched campaign's
snapshot is re-read from the database (events published meanwhile are lost), and
status changes recorded meanwhile are replayed from the CampaignEvent table.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from redis.asyncio import Redis

from domain.events import ProgressEvent, StatusEvent
from live.events import status_event
from live.pubsub import listen
from live.snapshots import load_progress
from models import CampaignEvent
from runtime.background import Background
from runtime.keys import PROGRESS_PATTERN, STATUS_PATTERN

log = logging.getLogger("campaigns.live")

T = TypeVar("T")

#: seconds of history behind the send rate shown to dashboards
RATE_WINDOW = 5.0


class Slot(Generic[T]):
    """Holds only the newest value; readers wait for a new one."""

    def __init__(self) -> None:
        self._value: T | None = None
        self._fresh = asyncio.Event()

    def put(self, value: T) -> None:
        self._value = value
        self._fresh.set()

    async def get(self) -> T:
        await self._fresh.wait()
        self._fresh.clear()
        assert self._value is not None
        return self._value

    def take(self) -> T | None:
        """The value if a new one came since the last get or take, else None; never waits."""
        if not self._fresh.is_set():
            return None
        self._fresh.clear()
        return self._value


class ChangeSlot:
    """Status changes for one subscriber: at most one pending entry per campaign."""

    def __init__(self) -> None:
        self._pending: OrderedDict[int, StatusEvent] = OrderedDict()
        self._fresh = asyncio.Event()

    def put(self, event: StatusEvent) -> None:
        self._pending.pop(event["campaign_id"], None)
        self._pending[event["campaign_id"]] = event
        self._fresh.set()

    async def get(self) -> StatusEvent:
        while not self._pending:
            self._fresh.clear()
            await self._fresh.wait()
        return self._pending.popitem(last=False)[1]


@dataclass
class ProgressUpdate:
    """A progress event with the send rate the hub measured; built once per event and
    shared by every subscriber of the campaign."""

    event: ProgressEvent
    send_rate: float
    #: the GraphQL object, built by the first subscriber that renders it (then reused)
    view: object | None = None


class LiveHub:
    def __init__(self, redis: Redis, reconnect_delay: float = 0.5) -> None:
        self.redis = redis
        self.reconnect_delay = reconnect_delay
        self._campaigns: dict[int, set[Slot[ProgressUpdate]]] = {}
        self._workspaces: dict[int, set[ChangeSlot]] = {}
        self._latest: dict[int, float] = {}  # campaign -> `at` of the newest event seen
        self._history: dict[int, deque[tuple[float, int]]] = {}
        self._subscription = Background("live-hub", self._run, log)
        self.connected = asyncio.Event()

    # ------------------------------------------------------------- subscribers

    @contextmanager
    def watch_campaign(self, campaign_id: int) -> Iterator[Slot[ProgressUpdate]]:
        slot: Slot[ProgressUpdate] = Slot()
        self._campaigns.setdefault(campaign_id, set()).add(slot)
        try:
            yield slot
        finally:
            slots = self._campaigns.get(campaign_id)
            if slots is not None:
                slots.discard(slot)
                if not slots:
                    del self._campaigns[campaign_id]
                    self._history.pop(campaign_id, None)
                    self._latest.pop(campaign_id, None)

    @contextmanager
    def watch_workspace(self, workspace_id: int) -> Iterator[ChangeSlot]:
        slot = ChangeSlot()
        self._workspaces.setdefault(workspace_id, set()).add(slot)
        try:
            yield slot
        finally:
            slots = self._workspaces.get(workspace_id)
            if slots is not None:
                slots.discard(slot)
                if not slots:
                    del self._workspaces[workspace_id]

    def snapshot(self, event: ProgressEvent) -> ProgressUpdate:
        """Record the event in the campaign's rate history and return the snapshot."""
        stats = event["stats"]
        processed = stats["total"] - stats["pending"]
        history = self._history.setdefault(event["campaign_id"], deque())
        history.append((event["at"], processed))
        while len(history) > 2 and event["at"] - history[0][0] > RATE_WINDOW:
            history.popleft()
        first_at, first_done = history[0]
        span = event["at"] - first_at
        rate = max(0.0, (processed - first_done) / span) if span > 0.2 else 0.0
        return ProgressUpdate(event, rate)

    # --------------------------------------------------------------- dispatch

    def dispatch(self, event: ProgressEvent | StatusEvent) -> None:
        if event["type"] == "status":
            for change_slot in self._workspaces.get(event["workspace_id"], ()):
                change_slot.put(event)
            return
        campaign_id = event["campaign_id"]
        slots = self._campaigns.get(campaign_id)
        if not slots:
            return
        if event["at"] < self._latest.get(campaign_id, 0.0):
            return  # an older read than one already shown (two publishers raced)
        self._latest[campaign_id] = event["at"]
        snapshot = self.snapshot(event)
        for slot in slots:
            slot.put(snapshot)

    # ----------------------------------------------------------- subscription

    async def start(self) -> None:
        self._subscription.start()
        try:
            await asyncio.wait_for(self.connected.wait(), 5)
        except TimeoutError:
            log.warning("live updates: Redis not reachable yet; retrying in the background")

    async def close(self) -> None:
        await self._subscription.stop()

    async def _run(self) -> None:
        await listen(
            self.redis,
            [PROGRESS_PATTERN, STATUS_PATTERN],
            lambda _channel, data: self._handle(data),
            self.connected,
            log,
            on_reconnect=self._resync,
            delay=self.reconnect_delay,
        )

    def _handle(self, data: object) -> None:
        if not isinstance(data, bytes | str):
            return
        try:
            event = json.loads(data)
        except ValueError:
            return
        if isinstance(event, dict) and event.get("type") in ("progress", "status"):
            self.dispatch(event)  # type: ignore[arg-type]

    async def _resync(self, since: float) -> None:
        """Events published during the outage are gone: re-read what subscribers show."""
        for event in await load_progress(list(self._campaigns)):
            event["at"] = time.time()
            self.dispatch(event)
        if not self._workspaces:
            return
        missed = (
            await CampaignEvent.filter(
                campaign__workspace_id__in=list(self._workspaces),
                at__gte=datetime.fromtimestamp(since - 1, UTC),
            )
            .order_by("id")
            .prefetch_related("campaign")
        )
        for e in missed:
            self.dispatch(
                status_event(
                    campaign_id=e.campaign_id,
                    workspace_id=e.campaign.workspace_id,
                    name=e.campaign.name,
                    from_status=e.from_status,
                    to_status=e.to_status,
                    reason=e.reason,
                    version=e.campaign.version,
                    at=e.at.timestamp(),
                )
            )
