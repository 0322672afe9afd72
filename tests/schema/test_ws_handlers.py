"""schema/ws_handlers.py over real WebSockets on the session's server, both protocols:
an operation's member leaves its broadcast group however the operation ends, a reused
operation id gets each update once, frames written by the group carry the operation's
id as the client sent it, streams that are never handed off run through strawberry,
and clients leaving mid-send are not errors.

What a group renders and to whom is tests/schema/test_broadcast.py's."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from starlette.applications import Starlette
from strawberry.http.exceptions import WebSocketDisconnected

from domain.events import ProgressEvent
from domain.ids import expect_id
from live.events import status_event
from runtime.keys import progress_channel, workspace_channel
from schema.broadcast import Broadcaster
from schema.ws_handlers import TransportWSHandler
from settings import Settings
from tests.conftest import Api
from tests.schema.states import future
from tests.waiting import until
from tests.wsclient import LEGACY_WS, TRANSPORT_WS, Session, connect

PROGRESS = "subscription($id: ID!) { campaignProgress(id: $id) { stats { sent } } }"
CHANGES = "subscription { campaignStatusChanges { name to } }"
BOTH = pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
START = {TRANSPORT_WS: "subscribe", LEGACY_WS: "start"}
STOP = {TRANSPORT_WS: "complete", LEGACY_WS: "stop"}
DATA = {TRANSPORT_WS: "next", LEGACY_WS: "data"}


@pytest_asyncio.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    assert settings.redis_url
    client = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


def session(api: Api, protocol: str) -> Any:
    return connect(str(api.http.base_url).rstrip("/"), api.key, protocol)


def progress(pk: int, sent: int) -> ProgressEvent:
    stats = {"total": 100, "pending": 100 - sent, "sent": sent, "delivered": 0, "read": 0, "failed": 0, "cancelled": 0}
    return {
        "type": "progress",
        "campaign_id": pk,
        "workspace_id": 0,
        "status": "PROCESSING",
        "version": 3,
        "stats": stats,  # type: ignore[typeddict-item]
        "at": time.time(),
    }


async def publish(redis: Redis, pk: int, sent: int) -> None:
    await redis.publish(progress_channel(pk), json.dumps(progress(pk, sent)))


async def start(s: Session, protocol: str, op: str, query: str, **variables: Any) -> None:
    """Start operation `op` with an id of our choosing (the client numbers its own)."""
    payload = {"query": query, "variables": variables}
    await s.ws.send(json.dumps({"id": op, "type": START[protocol], "payload": payload}))


def members(broadcaster: Broadcaster, pk: int) -> int:
    """How many operations the groups of campaign `pk` write to."""
    return sum(len(group.members) for (campaign_id, _), group in broadcaster._groups.items() if campaign_id == pk)


async def campaign(api: Api) -> tuple[str, int]:
    gid = (await api.ready_campaign(2))["id"]
    return gid, expect_id(gid, "Campaign")


@BOTH
async def test_ending_an_operation_leaves_its_group_while_the_socket_stays_open(
    app: Starlette, api: Api, redis: Redis, protocol: str
) -> None:
    broadcaster: Broadcaster = app.state.broadcaster
    gid, pk = await campaign(api)
    before = broadcaster.groups
    async with session(api, protocol) as s:
        first = await s.subscribe(PROGRESS, id=gid)
        await s.data()
        assert broadcaster.groups == before + 1
        await s.inner.complete(first)
        await until(lambda: broadcaster.groups == before, what="the group closed when its one member left")
        # the socket goes on: a new operation gets a new group and its updates
        second = await s.subscribe(PROGRESS, id=gid)
        while True:  # the legacy protocol acknowledges the stop; nothing else comes for `first`
            message = await s.next()
            if message.get("id") == second:
                break
            assert message == {"type": "complete", "id": first}, message
        assert broadcaster.groups == before + 1
        await publish(redis, pk, 5)
        frame = await s.next()
        assert (frame["id"], frame["payload"]["data"]) == (second, {"campaignProgress": {"stats": {"sent": 5}}})
    await until(lambda: broadcaster.groups == before, what="the group closed with the socket")


@BOTH
async def test_an_operation_id_used_again_gets_each_update_once(
    app: Starlette, api: Api, redis: Redis, protocol: str
) -> None:
    broadcaster: Broadcaster = app.state.broadcaster
    gid, pk = await campaign(api)
    before = broadcaster.groups
    async with session(api, protocol) as s:
        await start(s, protocol, "op", PROGRESS, id=gid)
        assert (await s.data())["campaignProgress"]["stats"]["sent"] == 0
        if protocol == TRANSPORT_WS:  # an id may be used again once its operation completed
            await s.ws.send(json.dumps({"id": "op", "type": "complete"}))
        # graphql-ws replaces a running operation started again under its id
        await start(s, protocol, "op", PROGRESS, id=gid)
        while (message := await s.next())["type"] == "complete":
            pass  # the legacy protocol says the replaced one completed
        assert message["type"] == DATA[protocol] and message["id"] == "op"
        assert message["payload"]["data"] == {"campaignProgress": {"stats": {"sent": 0}}}
        await until(lambda: members(broadcaster, pk) == 1, what="the first operation's member left its group")
        assert broadcaster.groups == before + 1
        for sent in (1, 2):
            await publish(redis, pk, sent)
            frame = await s.next()
            assert frame["id"] == "op"
            assert frame["payload"]["data"]["campaignProgress"]["stats"]["sent"] == sent  # no second copy of 1


@BOTH
async def test_frames_written_by_the_group_carry_the_operation_id_as_the_client_sent_it(
    api: Api, redis: Redis, protocol: str
) -> None:
    gid, pk = await campaign(api)
    odd = 'a "quoted" \\ id ☃ </script>'
    async with session(api, protocol) as s:
        await start(s, protocol, odd, PROGRESS, id=gid)
        first = await s.next()  # sent by strawberry
        assert (first["type"], first["id"]) == (DATA[protocol], odd)
        await publish(redis, pk, 3)
        raw = await asyncio.wait_for(s.ws.recv(), 10)  # written by the group, frame_start and all
        frame = json.loads(raw)
        assert frame == {
            "type": DATA[protocol],
            "id": odd,
            "payload": {"data": {"campaignProgress": {"stats": {"sent": 3}}}},
        }
        # the same ask again: over graphql-transport-ws it joins the live group, and its
        # first snapshot is written by the handler itself (join_known_group)
        await start(s, protocol, odd + "2", PROGRESS, id=gid)
        joined = json.loads(await asyncio.wait_for(s.ws.recv(), 10))
        assert (joined["type"], joined["id"]) == (DATA[protocol], odd + "2")
        assert joined["payload"] == {"data": {"campaignProgress": {"stats": {"sent": 0}}}}  # the database's


async def test_a_handed_off_operation_keeps_no_task_of_its_own(api: Api) -> None:
    """graphql-transport-ws: once the group writes an operation's frames its task has
    ended (a future stands for it): thousands of dashboards, not thousands of tasks."""
    gid, _ = await campaign(api)
    async with session(api, TRANSPORT_WS) as s:
        await start(s, TRANSPORT_WS, "first", PROGRESS, id=gid)
        await s.data()
        await until(lambda: not any("run_operation" in repr(t.get_coro()) for t in asyncio.all_tasks()))
        for i in range(5):
            await start(s, TRANSPORT_WS, f"op{i}", PROGRESS, id=gid)
            await s.data()
        await until(lambda: not any("run_operation" in repr(t.get_coro()) for t in asyncio.all_tasks()))


@BOTH
async def test_streams_that_are_never_handed_off_go_through_strawberry(app: Starlette, api: Api, protocol: str) -> None:
    broadcaster: Broadcaster = app.state.broadcaster
    before = broadcaster.groups
    first, second = [(await api.ready_campaign(1, name=n))["id"] for n in ("First", "Second")]
    async with session(api, protocol) as s:
        await s.subscribe(CHANGES)
        await until(lambda: api.principal.workspace_id in app.state.hub._workspaces, what="watching the workspace")
        for gid, name in ((first, "First"), (second, "Second")):
            await api.gql("mutation($id: ID!) { sendCampaignNow(id: $id) { userErrors { code } } }", id=gid)
            assert await s.data() == {"campaignStatusChanges": {"name": name, "to": "QUEUED"}}
        assert broadcaster.groups == before  # no group: every result is strawberry's


async def test_a_client_gone_while_a_result_is_sent_is_not_an_error_but_other_failures_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="strawberry.ws.task")
    handler = TransportWSHandler(None, None, None, None, None, timedelta(seconds=10))  # type: ignore[arg-type]
    await handler.handle_task_exception(WebSocketDisconnected())
    assert caplog.records == []
    await handler.handle_task_exception(RuntimeError("a real bug"))
    [logged] = caplog.records
    assert (logged.name, logged.levelno, logged.getMessage()) == (
        "strawberry.ws.task",
        logging.ERROR,
        "Exception in worker task",
    )


@BOTH
async def test_clients_leaving_while_results_are_sent_log_no_errors(
    app: Starlette, api: Api, redis: Redis, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    workspace = api.principal.workspace_id
    async with AsyncExitStack() as stack:
        leaving = [await stack.enter_async_context(session(api, protocol)) for _ in range(20)]
        for s in leaving:
            await s.subscribe(CHANGES)
        await until(lambda: len(app.state.hub._workspaces.get(workspace, ())) == 20, what="20 status subscribers")

        async def changes(n: int) -> None:  # one a campaign: none merges with another
            for i in range(n):
                event = status_event(
                    campaign_id=10_000_000 + i,
                    workspace_id=workspace,
                    name=f"c{i}",
                    from_status="DRAFT",
                    to_status="QUEUED",
                    reason=None,
                    version=1,
                )
                await redis.publish(workspace_channel(workspace), json.dumps(event))
                await asyncio.sleep(0.005)

        publishing = asyncio.create_task(changes(200))
        for s in leaving:
            await s.next()  # results are flowing to every socket
        for s in leaving:
            s.ws.transport.abort()  # gone mid-stream, without a close handshake
        await publishing
    await until(lambda: workspace not in app.state.hub._workspaces, what="every subscriber gone")
    assert [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_query_over_the_legacy_protocol_is_not_logged_as_a_bug(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """graphql-ws carries queries too; whether the server runs one or refuses it, that
    is the client's choice of protocol, not an unexpected error of the server."""
    caplog.set_level(logging.ERROR, logger="campaigns.graphql")
    async with session(api, LEGACY_WS) as s:
        await s.subscribe("{ viewer { name } }")
        answer = await s.next()
    assert "INTERNAL" not in json.dumps(answer), answer
    assert [r.getMessage() for r in caplog.records if r.name == "campaigns.graphql"] == []


async def test_one_operation_past_the_per_connection_cap_is_refused_and_the_others_go_on(
    api: Api, settings: Settings
) -> None:
    """MAX_SUBSCRIPTIONS_PER_CONNECTION (100 by default) bounds what one socket holds."""
    cap = settings.max_subscriptions_per_connection
    async with session(api, TRANSPORT_WS) as s:
        for _ in range(cap):
            await s.subscribe(CHANGES)
        await s.subscribe(CHANGES)
        refused = await s.next()
        assert refused["type"] == "error" and refused["payload"][0]["message"] == "Subscription limit reached"
        campaign = await api.ready_campaign(1)
        schedule = (
            "mutation($id: ID!, $at: DateTime!) { scheduleCampaign(id: $id, scheduledAt: $at) { userErrors { code } } }"
        )
        done = await api.gql(schedule, id=campaign["id"], at=future())
        assert done["scheduleCampaign"]["userErrors"] == []
        # a status change: every one of the first `cap` still gets it
        seen = {(await s.next())["id"] for _ in range(cap)}
        assert len(seen) == cap and refused["id"] not in seen
