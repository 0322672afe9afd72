"""schema/subscriptions.py over real WebSockets, with the API's own mutations and
events on the real Redis channels: what a status change and a progress snapshot
carry, the status filter, workspace isolation, refusals, and the two ways results
reach a socket (a broadcast group, or one at a time without one).

Groups themselves are tests/schema/test_broadcast.py's; the whole stack sending is
tests/e2e/test_live.py's."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from starlette.applications import Starlette

from domain.ids import expect_id, to_global_id
from runtime.keys import progress_channel
from schema.broadcast import Broadcaster
from services.keys import create_key
from settings import Settings
from tests.conftest import Api
from tests.schema.test_broadcast import event
from tests.waiting import until
from tests.wsclient import LEGACY_WS, TRANSPORT_WS, Session, connect

CHANGES = """subscription($status: [CampaignStatus!]) {
  campaignStatusChanges(status: $status) { campaignId name from to reason at } }"""
PROGRESS = """subscription($id: ID!) {
  campaignProgress(id: $id) { campaignId status sendRate at stats { total pending sent progress } } }"""
BOTH = pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])


@pytest_asyncio.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    assert settings.redis_url
    client = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


def session(api: Api, protocol: str = TRANSPORT_WS) -> Any:
    return connect(str(api.http.base_url).rstrip("/"), api.key, protocol)


async def watching(app: Starlette, api: Api, count: int = 1) -> None:
    """Until `count` status subscriptions of `api`'s workspace are registered."""
    hub = app.state.hub
    await until(lambda: len(hub._workspaces.get(api.principal.workspace_id, ())) == count, what="status subscribers")


async def act(api: Api, call: str, gid: str, **more: Any) -> None:
    declared = "".join(f", ${k}: String" for k in more)
    data = await api.gql(f"mutation($id: ID!{declared}) {{ {call} {{ userErrors {{ code }} }} }}", id=gid, **more)
    assert data[call.split("(")[0]]["userErrors"] == [], data


def recent(stamp: str) -> None:
    assert stamp.endswith("+00:00"), stamp
    assert abs(datetime.fromisoformat(stamp) - datetime.now(UTC)) < timedelta(minutes=1), stamp


async def error_of(s: Session) -> dict[str, Any]:
    """The one error a refused operation answers (either protocol), then its end."""
    message = await s.next()
    assert message["type"] in ("next", "data"), message
    assert message["payload"]["data"] is None, message
    [error] = message["payload"]["errors"]
    assert (await s.next())["type"] == "complete"
    return dict(error)


@BOTH
async def test_a_status_change_carries_the_campaign_the_move_and_the_reason(
    app: Starlette, api: Api, protocol: str
) -> None:
    campaign = await api.ready_campaign(2, name="Spring sale")
    gid = campaign["id"]
    async with session(api, protocol) as s:
        await s.subscribe(CHANGES)
        await watching(app, api)
        await act(api, "sendCampaignNow(id: $id)", gid)
        queued = (await s.data())["campaignStatusChanges"]
        await act(api, "cancelCampaign(id: $id, reason: $reason)", gid, reason="wrong audience")
        cancelled = (await s.data())["campaignStatusChanges"]
    assert {k: v for k, v in queued.items() if k != "at"} == {
        "campaignId": gid,
        "name": "Spring sale",
        "from": "DRAFT",
        "to": "QUEUED",
        "reason": None,
    }
    assert (cancelled["from"], cancelled["to"], cancelled["reason"]) == ("QUEUED", "CANCELLED", "wrong audience")
    recent(queued["at"])
    assert queued["at"] <= cancelled["at"]


async def test_the_status_filter_passes_only_the_statuses_asked_for(app: Starlette, api: Api) -> None:
    skipped, wanted = (await api.ready_campaign(1, name="Skipped"))["id"], (await api.ready_campaign(1))["id"]
    async with session(api) as s:
        await s.subscribe(CHANGES, status=["PAUSED", "CANCELLED"])
        await watching(app, api)
        await act(api, "sendCampaignNow(id: $id)", skipped)  # → QUEUED: not asked for
        await act(api, "sendCampaignNow(id: $id)", wanted)
        await act(api, "pauseCampaign(id: $id)", wanted)
        first = (await s.data())["campaignStatusChanges"]
        await act(api, "cancelCampaign(id: $id)", skipped)
        second = (await s.data())["campaignStatusChanges"]
    assert (first["campaignId"], first["from"], first["to"]) == (wanted, "QUEUED", "PAUSED")
    assert (second["campaignId"], second["from"], second["to"]) == (skipped, "QUEUED", "CANCELLED")


async def test_status_changes_reach_only_their_own_workspace(app: Starlette, api: Api, other_api: Api) -> None:
    ours, theirs = (await api.ready_campaign(1))["id"], (await other_api.ready_campaign(1))["id"]
    async with session(api) as mine, session(other_api) as other:
        await mine.subscribe(CHANGES)
        await other.subscribe(CHANGES)
        await watching(app, api)
        await watching(app, other_api)
        await act(api, "sendCampaignNow(id: $id)", ours)
        assert (await mine.data())["campaignStatusChanges"]["campaignId"] == ours
        await act(other_api, "sendCampaignNow(id: $id)", theirs)
        # the other workspace's first change is its own: ours never reached it
        assert (await other.data())["campaignStatusChanges"]["campaignId"] == theirs


@BOTH
async def test_progress_is_the_campaigns_own_snapshot_then_each_update_with_its_send_rate(
    api: Api, redis: Redis, protocol: str
) -> None:
    gid = (await api.ready_campaign(4))["id"]
    pk = expect_id(gid, "Campaign")
    async with session(api, protocol) as s:
        await s.subscribe(PROGRESS, id=gid)
        first = (await s.data())["campaignProgress"]
        assert {k: v for k, v in first.items() if k != "at"} == {
            "campaignId": gid,
            "status": "DRAFT",
            "sendRate": 0.0,
            "stats": {"total": 4, "pending": 4, "sent": 0, "progress": 0.0},
        }
        recent(first["at"])
        # 10 processed (total - pending) in the 4 s since the first snapshot: 2.5 a second
        at = datetime.fromisoformat(first["at"]).timestamp() + 4.0
        await redis.publish(progress_channel(pk), json.dumps(event(pk, 10, at=at)))
        update = (await s.data())["campaignProgress"]
    assert update == {
        "campaignId": to_global_id("Campaign", pk),
        "status": "PROCESSING",
        "sendRate": 2.5,
        "at": datetime.fromtimestamp(at, UTC).isoformat(),
        "stats": {"total": 100, "pending": 90, "sent": 10, "progress": 0.1},
    }


async def test_without_a_broadcaster_each_update_goes_through_the_operations_own_stream(
    app: Starlette, api: Api, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    gid = (await api.ready_campaign(2))["id"]
    pk = expect_id(gid, "Campaign")
    # setitem on the State's dict (see tests/conftest.py's `app`)
    monkeypatch.setitem(app.state._state, "broadcaster", None)
    async with session(api) as s:
        await s.subscribe(PROGRESS, id=gid)
        first = (await s.data())["campaignProgress"]
        start = datetime.fromisoformat(first["at"]).timestamp()
        for n, sent in enumerate((3, 7), start=1):
            await redis.publish(progress_channel(pk), json.dumps(event(pk, sent, at=start + n)))
            assert (await s.data())["campaignProgress"]["stats"]["sent"] == sent


@pytest.mark.parametrize("gid", ["garbage", to_global_id("Message", 1), to_global_id("Campaign", 987_654_321)])
async def test_progress_of_a_malformed_or_unknown_id_is_not_found_and_joins_no_group(
    app: Starlette, api: Api, gid: str
) -> None:
    broadcaster: Broadcaster = app.state.broadcaster
    before = broadcaster.groups
    async with session(api) as s:
        await s.subscribe(PROGRESS, id=gid)
        error = await error_of(s)
    assert error["message"] == f"No campaign with id {gid!r}."
    assert error["extensions"] == {"code": "NOT_FOUND", "field": ["id"]}
    assert broadcaster.groups == before


async def test_joining_a_live_group_still_checks_each_callers_key_and_workspace(
    app: Starlette, api: Api, other_api: Api, redis: Redis
) -> None:
    """A subscription asking what a live group asks skips strawberry's pipeline
    (join_known_group): what depends on the caller is still checked, and worded as the
    full path words it."""
    gid = (await api.ready_campaign(3))["id"]
    pk = expect_id(gid, "Campaign")
    broadcaster: Broadcaster = app.state.broadcaster
    _, writer = await create_key(api.principal, "writer", ["write", "send"])
    base = str(api.http.base_url).rstrip("/")
    async with session(api) as first, session(api) as second:
        await first.subscribe(PROGRESS, id=gid)
        await first.data()
        groups = broadcaster.groups
        async with session(other_api) as stranger, connect(base, writer) as unread:
            await stranger.subscribe(PROGRESS, id=gid)
            assert (await error_of(stranger))["extensions"]["code"] == "NOT_FOUND"
            await unread.subscribe(PROGRESS, id=gid)
            assert (await error_of(unread))["extensions"]["code"] == "FORBIDDEN"
        await second.subscribe(PROGRESS, id=gid)
        joined = (await second.data())["campaignProgress"]
        assert joined["campaignId"] == gid and joined["stats"]["total"] == 3  # its own first snapshot
        assert broadcaster.groups == groups  # it joined the live group
        start = datetime.fromisoformat(joined["at"]).timestamp()
        await redis.publish(progress_channel(pk), json.dumps(event(pk, 2, at=start + 1)))
        for s in (first, second):
            assert (await s.data())["campaignProgress"]["stats"]["sent"] == 2


@pytest.mark.parametrize("document", [PROGRESS, CHANGES])
async def test_without_redis_live_updates_are_refused_as_a_conflict(
    app: Starlette, api: Api, monkeypatch: pytest.MonkeyPatch, document: str
) -> None:
    gid = (await api.ready_campaign(1))["id"]
    broadcaster: Broadcaster = app.state.broadcaster
    before = broadcaster.groups
    monkeypatch.setitem(app.state._state, "hub", None)
    async with session(api) as s:
        await s.subscribe(document, id=gid)
        error = await error_of(s)
    assert error["message"] == "Live updates need Redis (REDIS_URL), which this server does not have."
    assert error["extensions"]["code"] == "CONFLICT"
    assert broadcaster.groups == before


async def test_a_subscription_sent_over_plain_http_is_the_clients_mistake_not_a_bug(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Subscriptions are served over WebSockets. One POSTed to /graphql is refused as
    what it is, not run as a query whose null root field is masked as an unexpected
    error and logged with a stack trace."""
    caplog.set_level(logging.ERROR, logger="campaigns.graphql")
    gid = (await api.ready_campaign(1))["id"]
    response = await api.http.post("/graphql", json={"query": PROGRESS, "variables": {"id": gid}}, headers=api.headers)
    assert response.status_code < 500, response.text
    assert "INTERNAL" not in response.text and "Unexpected error" not in response.text, response.text
    assert [r.getMessage() for r in caplog.records if r.name == "campaigns.graphql"] == []
