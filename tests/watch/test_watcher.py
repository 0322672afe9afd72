"""The watcher's protocol against a scripted graphql-transport-ws server: settling,
pings, reconnections, refusals."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from tests.watch.samples import progress_payload as _progress
from watch.client import PROTOCOL
from watch.display import Display
from watch.watcher import Watcher, WatchError

Handler = Callable[[ServerConnection, int], Awaitable[None]]


def _next(sub_id: str, progress: dict[str, Any]) -> str:
    return json.dumps({"id": sub_id, "type": "next", "payload": {"data": {"campaignProgress": progress}}})


async def _accept(ws: ServerConnection, key: str = "cmp_good") -> str:
    """The server side of connection_init/ack/subscribe; returns the subscription id."""
    init = json.loads(await ws.recv())
    assert init["type"] == "connection_init"
    if init["payload"] != {"Authorization": f"Bearer {key}"}:
        await ws.close(4403, "Forbidden")
        raise AssertionError("refused")
    await ws.send(json.dumps({"type": "connection_ack"}))
    subscribe = json.loads(await ws.recv())
    assert subscribe["type"] == "subscribe" and "campaignProgress" in subscribe["payload"]["query"]
    assert subscribe["payload"]["variables"] == {"id": "Q2FtcGFpZ246MQ"}
    return str(subscribe["id"])


@asynccontextmanager
async def scripted_server(handler: Handler) -> AsyncIterator[str]:
    """A graphql-transport-ws server running `handler(ws, n)` for its n-th connection."""
    count = 0

    async def run(ws: ServerConnection) -> None:
        nonlocal count
        count += 1
        try:
            await handler(ws, count)
        except AssertionError:
            pass

    async with serve(run, "127.0.0.1", 0, subprotocols=[PROTOCOL]) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/graphql"


def _watcher(url: str, key: str = "cmp_good", settle: float = 0.2) -> tuple[Watcher, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    display = Display(out, err, tty=False, plain_interval=0.0)
    return Watcher(url, key, "Q2FtcGFpZ246MQ", display, settle=settle, backoff=(0.05, 0.2)), out, err


async def test_watch_ends_once_a_terminal_campaign_has_settled() -> None:
    async def handler(ws: ServerConnection, _n: int) -> None:
        sub = await _accept(ws)
        await ws.send(_next(sub, _progress("PROCESSING", 10, 6, sent=4, rate=4.0)))
        await ws.send(_next(sub, _progress("COMPLETED", 10, 0, sent=10)))
        await asyncio.sleep(0.15)  # a receipt after COMPLETED restarts the settle clock
        await ws.send(_next(sub, _progress("COMPLETED", 10, 0, sent=9, failed=1)))
        await ws.wait_closed()

    async with scripted_server(handler) as url:
        watcher, out, _ = _watcher(url)
        started = time.monotonic()
        final = await asyncio.wait_for(watcher.run(), 5)
    assert time.monotonic() - started >= 0.35
    assert (final.status, final.failed) == ("COMPLETED", 1)
    assert out.getvalue().splitlines()[0].startswith("PROCESSING  40.0%")


async def test_pings_are_answered_with_pongs() -> None:
    pongs: list[dict[str, Any]] = []

    async def handler(ws: ServerConnection, _n: int) -> None:
        sub = await _accept(ws)
        await ws.send(json.dumps({"type": "ping"}))
        pongs.append(json.loads(await ws.recv()))
        await ws.send(_next(sub, _progress("COMPLETED", 1, 0, sent=1)))
        await ws.wait_closed()

    async with scripted_server(handler) as url:
        watcher, _, _ = _watcher(url)
        await asyncio.wait_for(watcher.run(), 5)
    assert pongs == [{"type": "pong"}]


async def test_a_dropped_connection_is_reopened_and_the_watch_goes_on() -> None:
    async def handler(ws: ServerConnection, n: int) -> None:
        sub = await _accept(ws)
        if n == 1:
            await ws.send(_next(sub, _progress("PROCESSING", 10, 8, sent=2)))
            await asyncio.sleep(0.05)
            ws.transport.abort()  # no close frame: the network went away
        elif n == 2:
            await ws.send(_next(sub, _progress("PROCESSING", 10, 5, sent=5)))
            await ws.close(1012, "service restart")
        else:
            await ws.send(_next(sub, _progress("COMPLETED", 10, 0, sent=10)))
            await ws.wait_closed()

    async with scripted_server(handler) as url:
        watcher, out, err = _watcher(url)
        final = await asyncio.wait_for(watcher.run(), 10)
    assert watcher.connections == 3 and final.status == "COMPLETED"
    told = err.getvalue().splitlines()
    assert [line.split(" (")[0] for line in told] == [
        "campaigns watch: connection lost",
        "campaigns watch: reconnected",
        "campaigns watch: connection lost",
        "campaigns watch: reconnected",
    ]
    assert "1012 service restart" in told[2]
    assert [line.split()[1] for line in out.getvalue().splitlines()] == ["20.0%", "50.0%", "100.0%"]


async def test_a_refused_key_is_an_error_not_a_retry() -> None:
    async def handler(ws: ServerConnection, _n: int) -> None:
        await _accept(ws, key="cmp_good")

    async with scripted_server(handler) as url:
        watcher, _, _ = _watcher(url, key="cmp_bad")
        with pytest.raises(WatchError, match=r"authentication failed.*4403"):
            await asyncio.wait_for(watcher.run(), 5)


@pytest.mark.parametrize("style", ["error", "next"])
async def test_an_unknown_campaign_is_an_error(style: str) -> None:
    errors = [{"message": "No campaign with id 'x'.", "extensions": {"code": "NOT_FOUND"}}]

    async def handler(ws: ServerConnection, _n: int) -> None:
        sub = await _accept(ws)
        payload: Any = errors if style == "error" else {"data": None, "errors": errors}
        await ws.send(json.dumps({"id": sub, "type": style, "payload": payload}))
        await ws.wait_closed()

    async with scripted_server(handler) as url:
        watcher, _, _ = _watcher(url)
        with pytest.raises(WatchError, match="not found"):
            await asyncio.wait_for(watcher.run(), 5)


async def test_no_server_is_an_error_at_once() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    watcher, _, _ = _watcher(f"ws://127.0.0.1:{port}/graphql")
    with pytest.raises(WatchError, match="cannot connect"):
        await asyncio.wait_for(watcher.run(), 5)


async def test_a_server_that_stays_away_ends_the_watch_with_an_error() -> None:
    async def handler(ws: ServerConnection, n: int) -> None:
        if n == 1:
            sub = await _accept(ws)
            await ws.send(_next(sub, _progress("PROCESSING", 10, 8, sent=2)))
            await asyncio.sleep(0.05)
        await ws.close(1011, "internal error")

    async with scripted_server(handler) as url:
        out, err = io.StringIO(), io.StringIO()
        display = Display(out, err, tty=False, plain_interval=0.0)
        watcher = Watcher(url, "cmp_good", "Q2FtcGFpZ246MQ", display, backoff=(0.05, 0.1), give_up_after=0.4)
        with pytest.raises(WatchError, match="could not get it back"):
            await asyncio.wait_for(watcher.run(), 5)
    told = err.getvalue().splitlines()
    assert told[0].startswith("campaigns watch: connection lost (connection closed (1011 internal error))")
    assert len(told) > 2 and all(line.startswith("campaigns watch: reconnecting failed") for line in told[1:])


async def test_a_processing_campaign_that_stands_still_shows_why_it_waits() -> None:
    reason = "Waiting until 09:00 Europe/Paris (2026-12-03) for 3,120 recipients: their local send time."
    asked: list[dict[str, Any]] = []

    async def handler(ws: ServerConnection, _n: int) -> None:
        sub = await _accept(ws)
        await ws.send(_next(sub, _progress("PROCESSING", 8000, 3120, sent=4880)))
        query = json.loads(await ws.recv())  # asked over the same connection once pending stands still
        asked.append(query)
        campaign = {"status": "PROCESSING", "statusReason": reason, "nextSendAt": "2026-12-03T08:00:00+00:00"}
        await ws.send(json.dumps({"id": query["id"], "type": "next", "payload": {"data": {"campaign": campaign}}}))
        await ws.send(json.dumps({"id": query["id"], "type": "complete"}))
        await ws.send(_next(sub, _progress("COMPLETED", 8000, 0, sent=8000)))
        await ws.wait_closed()

    async with scripted_server(handler) as url:
        out, err = io.StringIO(), io.StringIO()
        display = Display(out, err, tty=False, plain_interval=0.0)
        watcher = Watcher(url, "cmp_good", "Q2FtcGFpZ246MQ", display, settle=0.1, stall=0.1)
        final = await asyncio.wait_for(watcher.run(), 5)
    [query] = asked
    assert query["type"] == "subscribe" and query["id"] != "1"
    assert "statusReason" in query["payload"]["query"] and query["payload"]["variables"] == {"id": "Q2FtcGFpZ246MQ"}
    assert err.getvalue().splitlines() == [
        "campaigns watch: waiting until 09:00 Europe/Paris (2026-12-03) for 3,120 recipients"
    ]
    assert final.status == "COMPLETED" and watcher.waiting == ""  # the count moved: no longer waiting
