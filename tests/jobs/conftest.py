"""Fixtures of the worker and lifecycle-effect tests: each test gets a Redis server of
its own, so it can stop it (an outage) without touching anyone else's."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from arq import ArqRedis

from jobs.effects import lazy_redis
from tests.e2e.conftest import RedisServer


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer(Path(tempfile.mkdtemp(prefix="campaigns-jobs-")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture
async def redis(own_redis: RedisServer) -> AsyncIterator[ArqRedis]:
    pool = lazy_redis(own_redis.url)
    try:
        yield pool
    finally:
        await pool.aclose()
