"""web/health.py: liveness answers whatever the dependencies do; readiness asks the
database and Redis, gives each a second, and says which one is not ready and why, in
at most 200 characters.

Ready with both up, and not ready with Redis refusing connections, are in
tests/web/test_edges.py. The Redis servers here are real sockets on loopback that
speak (or fail to speak) the protocol."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def redis_at(handler: Handler) -> AsyncIterator[Redis]:
    """A Redis client of a server on a free loopback port that runs `handler` per connection."""
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await handler(reader, writer)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        yield client
    finally:
        await client.aclose()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def silent(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
    """Accepts the connection and reads, never answers: a frozen Redis."""
    while await reader.read(65536):
        pass


async def long_errors(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers every command with an error of 1,000 characters."""
    while header := await reader.readline():  # *<n>\r\n, then n bulk strings: $<len>\r\n<bytes>\r\n
        for _ in range(int(header[1:])):
            await reader.readline()
            await reader.readline()
        writer.write(b"-ERR " + b"x" * 995 + b"\r\n")
        await writer.drain()


async def readiness_with(
    app: Starlette, monkeypatch: pytest.MonkeyPatch, http: httpx.AsyncClient, redis: object
) -> httpx.Response:
    # setitem on the State's dict (see tests/conftest.py's `app`)
    monkeypatch.setitem(app.state._state, "redis", redis)
    try:
        return await http.get("/readyz")
    finally:
        monkeypatch.undo()


async def test_readiness_says_so_when_redis_is_not_configured(
    http: httpx.AsyncClient, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = await readiness_with(app, monkeypatch, http, None)
    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "checks": {"database": "ok", "redis": "error: not configured"},
    }


async def test_readiness_gives_a_redis_that_does_not_answer_one_second(
    http: httpx.AsyncClient, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with redis_at(silent) as frozen:
        started = time.monotonic()
        response = await readiness_with(app, monkeypatch, http, frozen)
        waited = time.monotonic() - started
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] == "error: timeout", body
    assert 1.0 <= waited < 3.0, waited


async def test_a_failure_is_named_without_the_exceptions_text_which_goes_to_the_log(
    http: httpx.AsyncClient, app: Starlette, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """/readyz is public: an exception's text names hosts and ports (and here, 995 x's)."""
    caplog.set_level(logging.WARNING, logger="campaigns.health")
    async with redis_at(long_errors) as failing:
        response = await readiness_with(app, monkeypatch, http, failing)
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "error: unavailable"
    assert "xxx" not in response.text
    assert any("x" * 995 in r.getMessage() for r in caplog.records if r.name == "campaigns.health")


async def test_liveness_answers_at_once_while_redis_does_not(
    http: httpx.AsyncClient, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with redis_at(silent) as frozen:
        monkeypatch.setitem(app.state._state, "redis", frozen)
        try:
            started = time.monotonic()
            response = await http.get("/healthz")
            waited = time.monotonic() - started
        finally:
            monkeypatch.undo()
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert waited < 0.5, waited
