"""Pause and Cancel reach a sending worker at once, not at its next renewal.

The API publishes `{"action", "nonce"}` on the campaign's control channel after the
status change commits, then waits (briefly) on an ack list. Only a worker running the
campaign under a lease answers: it stops the run, synchronously, so no provider call
starts afterwards, and pushes `{"owner", "fence"}`. The API accepts only the ack of
the lease it read after the commit, so a stale run job elsewhere (one that never got
the lease) cannot confirm a stop it has nothing to do with.

The message is an accelerator, not the guarantee: if no ack comes (Redis down, the
worker frozen), the API waits out the lease proof instead (domain/lease.py), after
which no run can start a call: the database already says PAUSED or CANCELLED, and a
renewal or claim under that status fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TypedDict

from redis.asyncio import Redis

from domain.lifecycle import Action
from live.pubsub import listen
from runtime.background import Background
from runtime.keys import CONTROL_PATTERN, control_ack_key, control_channel

log = logging.getLogger("campaigns.control")

ACK_TTL_S = 30


class ControlMessage(TypedDict):
    action: str  # an Action: PAUSE | CANCEL
    nonce: str


class ControlAck(TypedDict):
    """Who stopped: the lease holder's owner and fence."""

    owner: str
    fence: int


async def request_stop(redis: Redis, campaign_id: int, action: Action, owner: str, fence: int, wait: float) -> bool:
    """Tell the worker holding (owner, fence) to stop; True once it acknowledged within
    `wait` seconds. Redis errors propagate (the caller falls back on the lease proof)."""
    nonce = secrets.token_hex(8)
    message: ControlMessage = {"action": action.value, "nonce": nonce}
    if not await redis.publish(control_channel(campaign_id), json.dumps(message)):
        return False
    key = control_ack_key(campaign_id, nonce)
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        answer = await redis.blpop([key], timeout=max(left, 0.01))  # type: ignore[arg-type,misc]
        if answer is None:
            break
        try:
            ack: ControlAck = json.loads(answer[1])
        except (ValueError, TypeError):
            continue
        if ack.get("owner") == owner and ack.get("fence") == fence:
            return True
    return False


#: a run's stop handler: called with the action, returns what to await before acking
#: (the calls in flight), or None when this process has no run to stop
StopHandler = Callable[[Action], Awaitable[None] | None]


class ControlListener:
    """One pattern subscription per worker process, dispatching to the runs it holds."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.handlers: dict[int, tuple[StopHandler, Callable[[], ControlAck | None]]] = {}
        self._acks: set[asyncio.Task[None]] = set()
        self._ready = asyncio.Event()
        self._subscription = Background(
            "control-listener", lambda: listen(self.redis, [CONTROL_PATTERN], self._dispatch, self._ready, log), log
        )

    def register(self, campaign_id: int, stop: StopHandler, holder: Callable[[], ControlAck | None]) -> None:
        """`holder()` names the lease this process holds on the campaign (None while it
        has none): only then is a stop acknowledged."""
        self.handlers[campaign_id] = (stop, holder)

    def unregister(self, campaign_id: int) -> None:
        self.handlers.pop(campaign_id, None)

    async def start(self, ready_within: float = 10) -> None:
        """Listen; wait (bounded) for the first subscription, but never fail for Redis:
        the subscription is rebuilt after every outage."""
        self._subscription.start()
        try:
            await asyncio.wait_for(self._ready.wait(), ready_within)
        except TimeoutError:
            log.warning("control channel not subscribed yet (Redis unreachable?); stops arrive by renewal")

    async def close(self) -> None:
        await self._subscription.stop()  # first: no new ack starts once it has ended
        acks = list(self._acks)
        for task in acks:
            task.cancel()
        await asyncio.gather(*acks, return_exceptions=True)

    async def _dispatch(self, channel: str, data: bytes | str) -> None:
        try:
            campaign_id = int(channel.rsplit(":", 1)[1])
            message: ControlMessage = json.loads(data)
            action = Action(message["action"])
        except (ValueError, IndexError, KeyError, TypeError):
            return
        handler = self.handlers.get(campaign_id)
        if handler is None:
            return  # another worker's campaign
        stop, holder = handler
        settled = stop(action)  # synchronous: no new call starts from here
        ack = holder()
        if ack is None:
            return  # no lease here (a job that has not got it, or lost it): not ours to confirm
        # Ack once the calls already started are done (bounded), off the listening loop.
        task = asyncio.create_task(self._ack(campaign_id, message["nonce"], ack, settled))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def _ack(self, campaign_id: int, nonce: str, ack: ControlAck, settled: Awaitable[None] | None) -> None:
        if settled is not None:
            await settled
        key = control_ack_key(campaign_id, nonce)
        try:
            await self.redis.rpush(key, json.dumps(ack))  # type: ignore[misc]
            await self.redis.expire(key, ACK_TTL_S)
        except Exception as exc:  # the stop happened; only its confirmation is lost
            log.warning("acknowledging the stop of campaign %s failed: %s", campaign_id, exc)
