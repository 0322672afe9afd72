"""One Redis pattern subscription that survives outages: the reconnect loop that the
worker's control listener and the API's live hub share.

A `PubSub` raises once Redis is gone for a while; it is rebuilt in this outer loop
(docs/STACK.md, redis-py). Messages published during an outage are lost, so
`on_reconnect(lost_at)` lets the caller re-read what it missed from the database.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from redis.asyncio import Redis

Handler = Callable[[str, bytes | str], Awaitable[None] | None]


async def listen(
    redis: Redis,
    patterns: Sequence[str],
    handle: Handler,
    connected: asyncio.Event,
    log: logging.Logger,
    *,
    on_reconnect: Callable[[float], Awaitable[None]] | None = None,
    delay: float = 0.5,
) -> None:
    """Subscribe to `patterns` and call `handle(channel, data)` for every message, until
    cancelled. `connected` is set while subscribed."""
    lost_at: float | None = None
    while True:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(*patterns)
            connected.set()
            if lost_at is not None:
                since, lost_at = lost_at, None
                log.warning("Redis subscription back after %.1f s", time.time() - since)
                if on_reconnect is not None:
                    await on_reconnect(since)
            async for raw in pubsub.listen():
                channel, data = raw.get("channel"), raw.get("data")
                if isinstance(channel, bytes | str) and isinstance(data, bytes | str):
                    done = handle(channel.decode() if isinstance(channel, bytes) else channel, data)
                    if inspect.isawaitable(done):
                        await done
        except asyncio.CancelledError:
            await pubsub.aclose()
            raise
        except Exception as exc:
            if lost_at is None:  # once per outage
                lost_at = time.time()
                log.warning("Redis subscription lost (%s); reconnecting", exc)
            connected.clear()
            try:
                await pubsub.aclose()
            except Exception:
                pass
            await asyncio.sleep(delay)
