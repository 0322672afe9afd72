"""The rate limiters against a real Redis: the shared budget is kept, and a caller that
comes late catches up instead of losing its slots."""

from __future__ import annotations

import asyncio
import secrets
import time

from redis.asyncio import Redis

from jobs.ratelimit import AccountLimiter, Limiters, TokenBucket
from settings import Settings


async def paced(limiter: AccountLimiter | TokenBucket | Limiters, n: int, stall_every: int = 0) -> float:
    """Seconds `n` acquisitions take; the caller stalls 20 ms every `stall_every` (a claim's
    round trip)."""
    started = time.monotonic()
    for i in range(n):
        await limiter.acquire()
        if stall_every and i % stall_every == stall_every - 1:
            await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_the_account_limiter_keeps_its_rate_and_a_late_caller_catches_up(settings: Settings) -> None:
    redis = Redis.from_url(settings.redis_url or "")
    try:
        limiter = AccountLimiter(redis, f"test-{secrets.token_hex(4)}", rate=2000)
        await paced(limiter, 400)  # spend the initial burst
        took = await paced(limiter, 2000, stall_every=100)
        # 2,000 slots at 2,000/s: one second; the 20 stalls of 20 ms are caught up
        assert 0.9 < took < 1.15, took
    finally:
        await redis.aclose()


async def test_two_limiters_share_one_budget(settings: Settings) -> None:
    redis = Redis.from_url(settings.redis_url or "")
    try:
        account = f"test-{secrets.token_hex(4)}"
        a, b = AccountLimiter(redis, account, rate=2000), AccountLimiter(redis, account, rate=2000)
        await asyncio.gather(paced(a, 200), paced(b, 200))  # the initial burst
        took = max(await asyncio.gather(paced(a, 1000), paced(b, 1000)))
        assert took > 0.9, took  # 2,000 slots between them at 2,000/s
    finally:
        await redis.aclose()


async def test_a_rate_limit_answer_backs_every_limiter_off() -> None:
    bucket = TokenBucket(rate=1000)
    both = Limiters([bucket])
    await paced(both, 10)
    both.backoff(0.2)
    started = time.monotonic()
    await both.acquire()
    assert time.monotonic() - started >= 0.19


async def test_without_redis_the_account_limiter_paces_locally() -> None:
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    limiter = AccountLimiter(dead, "down", rate=1000)
    took = await paced(limiter, 500)
    assert 0.25 < took < 0.7, took  # 500 at 1,000/s, less the catch-up burst of 200 ms
