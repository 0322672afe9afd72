"""Pause and cancel through GraphQL against a real Redis, a real database and an
in-process control listener: who may acknowledge a stop, and what the mutation says
when nobody does (with Redis up, and with Redis down)."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from starlette.applications import Starlette

from domain.ids import expect_id
from domain.lease import MAX_PROOF_S
from domain.lifecycle import Action, CampaignStatus
from jobs.control import ControlAck, ControlListener
from jobs.effects import LifecycleEffects, lazy_redis
from models import Campaign
from services.sending_store import SqlSendingStore
from settings import Settings
from tests.conftest import Api
from tests.schema.states import campaign_in, mutate

PAYLOAD = "campaign { status } userErrors { code message } workerAcknowledged"


@pytest_asyncio.fixture
async def listener(settings: Settings) -> AsyncIterator[ControlListener]:
    redis = Redis.from_url(settings.redis_url or "")
    control = ControlListener(redis)
    await control.start()
    try:
        yield control
    finally:
        await control.close()
        await redis.aclose()


async def sending(api: Api, owner: str = "worker-1") -> tuple[str, int, ControlAck]:
    """A PROCESSING campaign whose lease `owner` holds (nobody really sends it)."""
    view = await campaign_in(api, CampaignStatus.PROCESSING, recipients=3)
    pk = expect_id(view["id"], "Campaign")
    lease = await SqlSendingStore().acquire_lease(pk, owner, 15)
    assert lease is not None
    return view["id"], pk, {"owner": lease.owner, "fence": lease.fence}


async def test_the_lease_holder_acknowledges_a_pause_at_once(api: Api, listener: ControlListener) -> None:
    gid, pk, holder = await sending(api)
    stops: list[Action] = []
    listener.register(pk, lambda action: stops.append(action), lambda: holder)
    started = time.monotonic()
    paused = await mutate(api, "pauseCampaign(id: $id)", PAYLOAD, id=gid)
    assert paused["userErrors"] == [] and paused["campaign"]["status"] == "PAUSED"
    assert paused["workerAcknowledged"] is True
    assert stops == [Action.PAUSE]
    assert time.monotonic() - started < 1.5


async def test_a_worker_without_the_lease_cannot_acknowledge(api: Api, listener: ControlListener) -> None:
    """Finding 6: a stale run job (one that never got the lease) acknowledged the pause,
    so the mutation said the worker had stopped when the sending one had heard nothing."""
    gid, pk, _ = await sending(api)
    stale: ControlAck = {"owner": "worker-2", "fence": 99}
    listener.register(pk, lambda action: None, lambda: stale)  # answers, but for no lease of this campaign
    started = time.monotonic()
    paused = await mutate(api, "cancelCampaign(id: $id)", PAYLOAD, id=gid)
    assert paused["campaign"]["status"] == "CANCELLED"
    assert paused["workerAcknowledged"] is False
    # it waited until no lease proof from before the commit could still hold
    assert time.monotonic() - started >= MAX_PROOF_S - 0.05


async def test_no_worker_at_all_is_reported_as_not_acknowledged(api: Api) -> None:
    """Finding 6: the mutation reported success when no worker answered at all."""
    gid, _, _ = await sending(api)
    paused = await mutate(api, "pauseCampaign(id: $id)", PAYLOAD, id=gid)
    assert paused["campaign"]["status"] == "PAUSED" and paused["workerAcknowledged"] is False


async def test_a_campaign_nobody_leases_pauses_without_waiting(api: Api) -> None:
    view = await campaign_in(api, CampaignStatus.QUEUED, recipients=2)
    started = time.monotonic()
    paused = await mutate(api, "pauseCampaign(id: $id)", PAYLOAD, id=view["id"])
    assert paused["campaign"]["status"] == "PAUSED" and paused["workerAcknowledged"] is None
    assert time.monotonic() - started < 1.0


def _dead_redis_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{s.getsockname()[1]}/0"


@pytest.fixture
def redis_down(app: Starlette, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API's effects talk to a Redis that is not there (a port nothing listens on)."""
    monkeypatch.setitem(app.state._state, "effects", LifecycleEffects(lazy_redis(_dead_redis_url())))


async def test_with_redis_down_mutations_commit_and_say_so_without_error(api: Api, redis_down: None) -> None:
    """Finding 9: with Redis down, lifecycle mutations committed and then answered
    INTERNAL. Effects after the commit are best effort (the sweep repairs them)."""
    draft = await campaign_in(api, CampaignStatus.DRAFT, recipients=2)
    sent = await mutate(api, "sendCampaignNow(id: $id)", PAYLOAD, id=draft["id"])
    assert sent["userErrors"] == [] and sent["campaign"]["status"] == "QUEUED"
    gid, pk, _ = await sending(api)
    started = time.monotonic()
    paused = await mutate(api, "pauseCampaign(id: $id)", PAYLOAD, id=gid)
    # the promise holds without Redis: it waited out the lease proof
    assert paused["userErrors"] == [] and paused["workerAcknowledged"] is False
    assert time.monotonic() - started >= MAX_PROOF_S - 0.05
    resumed = await mutate(api, "resumeCampaign(id: $id)", PAYLOAD, id=gid)
    assert resumed["userErrors"] == [] and resumed["campaign"]["status"] == "QUEUED"
    assert (await Campaign.get(id=pk)).status is CampaignStatus.QUEUED
