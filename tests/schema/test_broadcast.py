"""Progress rendered once per group and written to every socket (schema/broadcast.py),
over real WebSockets on the session's uvicorn server, with events published on the
real Redis channel as the workers publish them."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from starlette.applications import Starlette

from domain.events import ProgressEvent
from domain.ids import expect_id
from live.events import progress_event
from runtime.keys import progress_channel
from schema.broadcast import Broadcaster, Member, StreamTarget
from settings import Settings
from tests.conftest import Api
from tests.waiting import until
from tests.wsclient import LEGACY_WS, TRANSPORT_WS, Session, connect

PROGRESS = "subscription($id: ID!) { campaignProgress(id: $id) { status at stats { total sent failed } } }"
SMALL = "subscription($id: ID!) { campaignProgress(id: $id) { stats { sent } } }"


@pytest_asyncio.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    assert settings.redis_url
    client = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


def event(pk: int, sent: int, at: float | None = None) -> ProgressEvent:
    """A progress event of a 100-recipient campaign, built as the service builds it."""
    row = {"id": pk, "workspace_id": 0, "status": "PROCESSING", "version": 3, "total": 100, "pending": 100 - sent}
    made = progress_event(
        row | {"sent": sent} | dict.fromkeys(("delivered", "read", "replied", "failed", "cancelled"), 0)
    )
    if at is not None:
        made["at"] = at
    return made


async def publish(redis: Redis, e: ProgressEvent) -> None:
    await redis.publish(progress_channel(e["campaign_id"]), json.dumps(e))


async def raw(session: Session, timeout: float = 5) -> dict[str, Any]:
    return await session.next(timeout)


async def quiet(session: Session, seconds: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        await session.next(seconds)


async def campaign(api: Api) -> tuple[str, int]:
    gid = (await api.ready_campaign(2))["id"]
    return gid, expect_id(gid, "Campaign")


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_every_subscriber_gets_the_same_rendering_of_each_update(
    app: Starlette, api: Api, redis: Redis, protocol: str
) -> None:
    gid, pk = await campaign(api)
    broadcaster: Broadcaster = app.state.broadcaster
    groups_before = broadcaster.groups
    async with AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(connect_session(api, protocol)) for _ in range(20)]
        small = await stack.enter_async_context(connect_session(api, protocol))
        for s in sessions:
            await s.subscribe(PROGRESS, id=gid)
        await small.subscribe(SMALL, id=gid)
        for s in [*sessions, small]:
            first = await s.data()
            assert first["campaignProgress"]["stats"]["sent"] == 0  # the database's snapshot
        # same query and variables: one group; another selection set: its own group
        assert broadcaster.groups == groups_before + 2
        await publish(redis, event(pk, 42))
        frames = [await raw(s) for s in sessions]
        kind = "next" if protocol == TRANSPORT_WS else "data"
        assert {f["type"] for f in frames} == {kind} and {f["id"] for f in frames} == {"1"}
        payloads = {json.dumps(f["payload"], sort_keys=True) for f in frames}
        assert len(payloads) == 1  # one rendering for all of them
        progress = frames[0]["payload"]["data"]["campaignProgress"]
        assert progress["status"] == "PROCESSING" and progress["stats"] == {"total": 100, "sent": 42, "failed": 0}
        assert await small.data() == {"campaignProgress": {"stats": {"sent": 42}}}
    await until(lambda: broadcaster.groups == groups_before)  # the last to leave closes a group


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_an_ended_operation_gets_nothing_more_and_the_others_carry_on(
    api: Api, redis: Redis, protocol: str
) -> None:
    gid, pk = await campaign(api)
    async with connect_session(api, protocol) as session, connect_session(api, protocol) as other:
        first, second = await session.subscribe(PROGRESS, id=gid), await session.subscribe(SMALL, id=gid)
        await other.subscribe(PROGRESS, id=gid)
        for s in (session, session, other):
            await s.data()
        stop = "complete" if protocol == TRANSPORT_WS else "stop"
        await session.ws.send(json.dumps({"id": first, "type": stop}))
        if protocol == LEGACY_WS:  # the legacy protocol acknowledges a stop
            assert await raw(session) == {"type": "complete", "id": first}
        await asyncio.sleep(0.2)
        await publish(redis, event(pk, 7))
        assert (await other.data())["campaignProgress"]["stats"]["sent"] == 7
        only = await raw(session)
        assert only["id"] == second and only["payload"]["data"] == {"campaignProgress": {"stats": {"sent": 7}}}
        await quiet(session)


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_refused_subscription_leaves_no_member_behind(
    app: Starlette, api: Api, other_api: Api, protocol: str
) -> None:
    gid, _ = await campaign(api)
    broadcaster: Broadcaster = app.state.broadcaster
    before = broadcaster.groups
    async with connect_session(other_api, protocol) as session:
        await session.subscribe(PROGRESS, id=gid)
        refused = await raw(session)
        assert "No campaign with id" in json.dumps(refused)
        assert broadcaster.groups == before  # the member added before the read has left


async def test_updates_older_than_the_first_snapshot_are_not_sent(api: Api, redis: Redis) -> None:
    gid, pk = await campaign(api)
    async with connect_session(api, TRANSPORT_WS) as session:
        await session.subscribe(PROGRESS, id=gid)
        await session.data()
        await publish(redis, event(pk, 5, at=time.time() - 60))  # read before our snapshot was
        await quiet(session)
        await publish(redis, event(pk, 6))
        assert (await session.data())["campaignProgress"]["stats"]["sent"] == 6


async def test_subscribers_leaving_mid_broadcast_log_no_errors(
    app: Starlette, api: Api, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    gid, pk = await campaign(api)
    async with connect_session(api, TRANSPORT_WS) as stays, AsyncExitStack() as stack:
        await stays.subscribe(PROGRESS, id=gid)
        await stays.data()
        leaving = [await stack.enter_async_context(connect_session(api, TRANSPORT_WS)) for _ in range(30)]
        for s in leaving:
            await s.subscribe(PROGRESS, id=gid)
            await s.data()
        publisher = asyncio.create_task(publish_for(redis, pk, seconds=1.5))
        await asyncio.sleep(0.3)
        for s in leaving:
            s.ws.transport.abort()  # no close handshake: the server finds out by writing
        last = await publisher
        seen = [(await stays.data())["campaignProgress"]["stats"]["sent"]]
        while seen[-1] < last:
            seen.append((await stays.data())["campaignProgress"]["stats"]["sent"])
    assert seen == sorted(seen) and len(seen) >= 3
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_slow_socket_gets_the_newest_frame_only_and_holds_no_one_up() -> None:
    """Latest wins per member, while another member's writes go straight through."""
    release, sent_slow, sent_fast = asyncio.Event(), list[str](), list[str]()

    async def slow_send(text: str) -> None:
        sent_slow.append(text)
        await release.wait()

    async def fast_send(text: str) -> None:
        sent_fast.append(text)

    def target(send: Any) -> StreamTarget:
        return StreamTarget("q", None, None, '{"id":"1","payload":', send, lambda: True)

    slow, fast = Member(target(slow_send), lambda _: None), Member(target(fast_send), lambda _: None)
    streams = [asyncio.create_task(m.stream(after=0.0)) for m in (slow, fast)]
    await asyncio.sleep(0)
    for i in range(1, 5):
        slow.offer(float(i), f"{i}")
        fast.offer(float(i), f"{i}")
    assert sent_slow == ['{"id":"1","payload":1}']  # the first write waits on the socket
    assert len(sent_fast) == 4  # the other member was not held up
    release.set()
    await until(lambda: len(sent_slow) == 2)
    assert sent_slow[-1] == '{"id":"1","payload":4}'  # 2 and 3 were replaced, never queued
    for task in streams:
        task.cancel()


# --- helpers ----------------------------------------------------------------------


def connect_session(api: Api, protocol: str) -> Any:
    return connect(str(api.http.base_url).rstrip("/"), api.key, protocol)


async def publish_for(redis: Redis, pk: int, seconds: float) -> int:
    """Publish an update every 50 ms; returns the last `sent` published."""
    deadline, sent = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        sent += 1
        await publish(redis, event(pk, sent))
        await asyncio.sleep(0.05)
    return sent


async def test_outside_the_websocket_handlers_each_result_goes_through_the_stream(
    app: Starlette, server: str, api: Api, redis: Redis
) -> None:
    """schema.subscribe called directly (no protocol handler, so no broadcast group):
    the same snapshot-first stream, one result at a time."""
    from starlette.requests import Request

    from schema.app import schema
    from schema.context import Context

    gid, pk = await campaign(api)
    request = Request({"type": "http", "app": app, "headers": [], "method": "GET", "path": "/"})
    stream = await schema.subscribe(
        SMALL, variable_values={"id": gid}, context_value=Context(request, None, api.principal)
    )
    assert not isinstance(stream, Exception) and hasattr(stream, "__anext__")
    first = await stream.__anext__()
    assert first.errors is None and first.data == {"campaignProgress": {"stats": {"sent": 0}}}
    await asyncio.sleep(0.1)  # the stream is listening once its first result is out
    await publish(redis, event(pk, 9))
    update = await asyncio.wait_for(stream.__anext__(), 5)
    assert update.data == {"campaignProgress": {"stats": {"sent": 9}}}
    await stream.aclose()
