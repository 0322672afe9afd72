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
from live.hub import LiveHub, ProgressUpdate
from runtime.keys import progress_channel
from schema import broadcast
from schema.broadcast import Broadcaster, Group, Member, StreamTarget
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


def recording(sent: list[str], on_send: Any = None, query: str = "q", **variables: Any) -> StreamTarget:
    """A target asking `query` that records what is written to it, and calls `on_send` first."""

    async def send(text: str) -> None:
        if on_send is not None:
            on_send()
        sent.append(text.removeprefix("<").removesuffix("}"))

    return StreamTarget(query, variables or None, None, "<", send, lambda: True)


def group_of(redis: Redis, pk: int) -> tuple[LiveHub, Group]:
    hub = LiveHub(redis)  # never started: events are dispatched by hand
    return hub, Group(hub, pk, lambda snapshot: str(snapshot.event["stats"]["sent"]))


async def test_a_newer_event_read_mid_round_goes_to_the_rest_of_the_round_then_to_the_first(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Latest wins across a round too: the group lets the loop run between chunks, so a
    frame is about one event interval old when written, however many sockets there are."""
    monkeypatch.setattr(broadcast, "CHUNK", 2)
    hub, group = group_of(redis, 1)
    sent: list[list[str]] = [[] for _ in range(6)]
    newer = event(1, 2, at=time.time() + 1)

    def publish_newer_once() -> None:  # read while the round's first chunk is written
        if hub._latest.get(1) != newer["at"]:
            hub.dispatch(newer)

    members = [Member(recording(box, publish_newer_once), lambda _: None) for box in sent]
    group.members.update(members)
    for m in members:
        m.start(after=0.0)
    order = [m for m in group.members]  # the round's order
    hub.dispatch(event(1, 1, at=time.time()))
    await until(lambda: all(m.shown == newer["at"] for m in members))
    first_chunk = {id(m) for m in order[:2]}
    for m, box in zip(members, sent, strict=True):
        assert box == (["1", "2"] if id(m) in first_chunk else ["2"]), (order.index(m), box)
    group.close()


async def test_members_asking_together_share_one_first_read_per_workspace(redis: Redis) -> None:
    _, group = group_of(redis, 1)
    reads, release = list[int](), asyncio.Event()

    def read(workspace: int) -> Any:
        async def once() -> ProgressUpdate:
            reads.append(workspace)
            await release.wait()
            return ProgressUpdate(event(1, 5), 0.0)

        return once

    asks = [asyncio.create_task(group.first(w, read(w))) for w in (1, 1, 1, 2)]
    await asyncio.sleep(0.05)
    release.set()
    answers = await asyncio.gather(*asks)
    assert sorted(reads) == [1, 2] and {a[1] for a in answers if a} == {"5"}
    assert len({a for a in answers[:3]}) == 1  # the same snapshot for the same workspace
    group.close()


async def test_a_member_joining_gets_the_groups_newest_frame_if_newer_than_its_first(
    app: Starlette, api: Api, redis: Redis
) -> None:
    """As a read shared with an earlier member may predate an update the group already
    sent: the joiner is offered the group's latest frame."""
    gid, pk = await campaign(api)
    broadcaster: Broadcaster = app.state.broadcaster
    async with connect_session(api, TRANSPORT_WS) as s:
        await s.subscribe(PROGRESS, id=gid)
        await s.data()
        await publish(redis, event(pk, 9))
        assert (await s.data())["campaignProgress"]["stats"]["sent"] == 9
        [group] = [g for (c, _), g in broadcaster._groups.items() if c == pk]
        before = broadcaster.groups
        sent: list[str] = []
        late = broadcaster.add(pk, recording(sent, query=PROGRESS, id=gid), lambda u: u)
        late.start(after=time.time() - 60)  # its first snapshot older than the group's latest
        await until(lambda: len(sent) == 1)
        assert broadcaster.groups == before  # the session's group
        assert json.loads(sent[0]) == json.loads(group.latest[1])  # type: ignore[index]
        assert json.loads(sent[0])["data"]["campaignProgress"]["stats"]["sent"] == 9
        late.leave()


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
