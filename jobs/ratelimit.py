"""Rate limits: one per campaign (local: only the lease holder sends it) and one per
provider account, shared by every worker through Redis (a WhatsApp number has a
messages-per-second tier, whoever sends)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.keys import account_rate_key

log = logging.getLogger("campaigns.ratelimit")


class TokenBucket:
    """Paces calls at `rate` per second, allowing a burst of `burst`. Reservations may
    go negative: each caller sleeps its own share, so waiters leave in order."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self.tokens = self.burst
        self.updated = time.monotonic()

    async def acquire(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)

    def backoff(self, seconds: float) -> None:
        """Hand out nothing for `seconds` (the reservations then resume at the rate)."""
        self.tokens = min(self.tokens, -seconds * self.rate)


# GCRA over Redis's clock: reserve `n` slots; returns milliseconds until the first.
# The theoretical arrival time (TAT) may lag `now` by at most `burst` ms.
_RESERVE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
local interval = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now - burst then tat = now - burst end
local first = tat
tat = tat + n * interval
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil(tat - now + burst + 1000))
return tostring(first - now)
"""


class AccountLimiter:
    """The provider account's budget, shared across workers. Slots are reserved from
    Redis in small chunks (20 ms worth) to keep Redis off the per-message path."""

    def __init__(self, redis: Redis, account: str, rate: float, burst_ms: float = 200.0) -> None:
        self.redis = redis
        self.key = account_rate_key(account)
        self.rate = rate
        self.interval_ms = 1000.0 / rate
        self.chunk = max(1, int(rate / 50))
        self.burst_ms = burst_ms
        self._next = 0.0  # monotonic time of the next local slot
        self._left = 0
        self._script = redis.register_script(_RESERVE)
        self._degraded = False
        self._refill = asyncio.Lock()

    async def acquire(self) -> None:
        if self._left == 0:
            # One refill at a time: concurrent callers (several campaigns in a worker)
            # would each reserve a chunk and over-book the shared budget.
            async with self._refill:
                if self._left == 0:
                    await self._reserve()
        self._left -= 1
        at, self._next = self._next, self._next + self.interval_ms / 1000
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def backoff(self, seconds: float) -> None:
        """The provider answered 130429: this process hands out no slot for `seconds`,
        then paces again (every in-flight call that got it asks; the latest end wins)."""
        self._next = max(self._next, time.monotonic() + seconds)

    async def _reserve(self) -> None:
        try:
            wait_ms = float(await self._script(keys=[self.key], args=[self.interval_ms, self.chunk, self.burst_ms]))
        except (RedisError, OSError):
            # Redis is down: keep sending at the account rate from this process
            # alone rather than stop (the budget is shared again once it is back).
            if not self._degraded:
                log.warning("rate limiter: Redis unreachable; pacing locally")
            self._degraded = True
            wait_ms = -self.burst_ms  # local pacing, with the same catch-up burst
        else:
            self._degraded = False
        # The reserved slots start where the shared GCRA says, up to `burst_ms` in the past:
        # a caller that came late (a claim's round trip, a loop that woke late) catches up
        # within the burst instead of losing those slots for good (clamping the start to
        # now lost about a tenth of the rate: 900 msg/s at a 1,000 limit).
        self._next = max(self._next, time.monotonic() + wait_ms / 1000)
        self._left = self.chunk


class Limiters:
    """All of a run's limits, in order."""

    def __init__(self, limiters: Sequence[TokenBucket | AccountLimiter]) -> None:
        self.limiters = list(limiters)

    async def acquire(self) -> None:
        for limiter in self.limiters:
            await limiter.acquire()

    def backoff(self, seconds: float) -> None:
        for limiter in self.limiters:
            limiter.backoff(seconds)
