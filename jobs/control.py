"""Pause and Cancel reach a sending worker at once, not at its next poll.

The API publishes `{"action", "nonce"}` on the campaign's control channel after the
status change commits, then waits (briefly) on an ack list. The worker holding the
campaign's run stops it — synchronously, so no provider call starts afterwards — and
only then pushes the ack. So when pauseCampaign returns, no new send starts; calls
already in flight finish and are counted. If no worker acks (none runs it, or it died),
the database still says PAUSED: claims are conditional on PROCESSING and the lease
renewal stops a run that missed the message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TypedDict

from redis.asyncio import Redis

from jobs.keys import CONTROL_PATTERN, control_ack_key, control_channel

log = logging.getLogger("campaigns.control")

ACK_TTL_S = 30


class ControlMessage(TypedDict):
    action: str  # PAUSE | CANCEL | FAIL
    nonce: str


async def request_stop(redis: Redis, campaign_id: int, action: str, wait: float | None = 2.0) -> bool:
    """Tell the worker running `campaign_id` to stop; True once it acknowledged.
    `wait=None` only publishes (no live lease: nobody is sending)."""
    nonce = secrets.token_hex(8)
    message: ControlMessage = {"action": action, "nonce": nonce}
    receivers = await redis.publish(control_channel(campaign_id), json.dumps(message))
    if not receivers or wait is None:
        return False
    answer = await redis.blpop([control_ack_key(campaign_id, nonce)], timeout=wait)  # type: ignore[arg-type,misc]
    if answer is None:
        log.warning("no worker acknowledged %s of campaign %s", action, campaign_id)
    return answer is not None


class ControlListener:
    """One pattern subscription per worker process, dispatching to the runs it holds."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.handlers: dict[int, Callable[[str], Awaitable[None] | None]] = {}
        self._acks: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def register(self, campaign_id: int, stop: Callable[[str], Awaitable[None] | None]) -> None:
        self.handlers[campaign_id] = stop

    def unregister(self, campaign_id: int) -> None:
        self.handlers.pop(campaign_id, None)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._ready.wait(), 10)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _listen(self) -> None:
        # Reconnects after a Redis outage; runs also stop via lease renewal meanwhile.
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(CONTROL_PATTERN)
                self._ready.set()
                async for raw in pubsub.listen():
                    await self._dispatch(raw)
            except asyncio.CancelledError:
                await pubsub.aclose()
                raise
            except Exception as exc:
                if self._ready.is_set():  # once per outage
                    log.warning("control subscription lost (%s); reconnecting", exc)
                self._ready.clear()
                try:
                    await pubsub.aclose()
                except Exception:
                    pass
                await asyncio.sleep(1)

    async def _dispatch(self, raw: dict[str, object]) -> None:
        channel = raw.get("channel")
        data = raw.get("data")
        if not isinstance(channel, bytes | str) or not isinstance(data, bytes | str):
            return
        name = channel.decode() if isinstance(channel, bytes) else channel
        try:
            campaign_id = int(name.rsplit(":", 1)[1])
            message: ControlMessage = json.loads(data)
        except (ValueError, IndexError):
            return
        stop = self.handlers.get(campaign_id)
        if stop is None:
            return  # another worker's campaign
        settled = stop(message["action"])  # synchronous: no new call starts from here
        # Ack once the calls already started are done (bounded), off the listening loop.
        task = asyncio.create_task(self._ack(campaign_id, message["nonce"], settled))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def _ack(self, campaign_id: int, nonce: str, settled: Awaitable[None] | None) -> None:
        if settled is not None:
            await settled
        key = control_ack_key(campaign_id, nonce)
        await self.redis.rpush(key, "1")  # type: ignore[misc]
        await self.redis.expire(key, ACK_TTL_S)
