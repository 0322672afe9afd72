"""Opt-outs end to end, from each of the three sources people and Meta have, while a
campaign runs: the API on uvicorn (the test session's app, whose webhook endpoint
receives everything), the worker's Runner with the real Cloud API client, the simulator
on uvicorn posting signed webhooks, a Redis server of the test's own, all real and on
loopback in this process (as `campaigns dev` runs them). The simulator's ledger is the
truth about what was sent.

The running campaign is paced (`sendRate` 4: a claim holds what starts within a second,
4 messages) and its phone X comes last, so X is still PENDING, several claim batches
away, when its opt-out commits; X must then fail `opted_out` without any provider call.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from domain.ids import expect_id, to_global_id
from domain.lifecycle import Action, CampaignStatus
from domain.messages import OPTED_OUT_CODE
from domain.optouts import OptOutSource
from jobs.control import ControlListener
from jobs.effects import lazy_redis
from jobs.worker import Runner
from models import Campaign, CampaignBillable, Message, OptOut
from providers.whatsapp import provider_from
from services import db
from services.transitions import apply_action
from settings import Settings
from simulator import SimulatorConfig, create_simulator_app
from simulator.engine import Simulator
from tests.conftest import Api, phone, serve
from tests.e2e.conftest import RedisServer
from tests.services.test_receipts import assert_consistent
from tests.waiting import until

RATE = 4  # messages per second of the running campaign: a claim batch is 4 messages
#: phones no other test of the session messages (an inbound webhook belongs to the
#: workspace that last messaged its phone while one sender serves them all)
_FRESH = itertools.count(400_000 + random.randrange(200_000))


@dataclass
class World:
    api: Api
    runner: Runner
    simulator: Simulator
    url: str  # the simulator's
    http: httpx.AsyncClient

    async def campaign(self, phones: list[str], rate: int | None = None) -> int:
        """A QUEUED campaign to `phones` (its run is started by `run`)."""
        view = await self.api.create_campaign(sendRate=rate, failureThreshold=None)
        added = await self.api.add(view["id"], *((p, {"name": "Ann"}) for p in phones))
        assert added["added"] == len(phones), added
        pk = expect_id(view["id"], "Campaign")
        await apply_action(self.api.principal, pk, Action.SEND_NOW)
        return pk

    def run(self, pk: int) -> asyncio.Task[str]:
        return asyncio.create_task(self.runner.run(pk))

    async def control(self, path: str, **body: Any) -> dict[str, Any]:
        response = await self.http.post(f"{self.url}/_simulator/{path}", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def sent_to(self, pk: int) -> set[str]:
        """The phones (E.164) the simulator accepted a message of campaign `pk` for."""
        return {"+" + record.to.lstrip("+") for record in self.simulator.ledger.sends(pk)}

    async def drained(self) -> None:
        """Every webhook posted (and so committed to the inbox) and applied."""
        async with asyncio.timeout(10):
            await self.simulator.webhooks.drain()

        async def applied() -> bool:
            return not await count_inbox()

        await until(applied, 10, "the inbox applied")


async def count_inbox() -> int:
    return int(await db.fetch_val(db.client(), "SELECT COUNT(*) AS n FROM webhook_inbox", []) or 0)


def fresh(n: int) -> list[str]:
    return [phone(next(_FRESH)) for _ in range(n)]


@asynccontextmanager
async def world_of(api: Api, server: str, settings: Settings) -> AsyncIterator[World]:
    redis_server = RedisServer(Path(tempfile.mkdtemp(prefix="campaigns-optouts-")))
    redis_server.start()
    config = SimulatorConfig(
        webhook_url=f"{server}/webhooks/whatsapp",
        sent_delay_ms=(5.0, 30.0),
        delivered_delay_ms=(30.0, 80.0),
        read_probability=0.0,
        late_probability=0.0,
        webhook_flush_ms=10.0,
    )
    simulator_app = create_simulator_app(config)
    async with serve(simulator_app) as url, httpx.AsyncClient(timeout=10) as http:
        worker_settings = Settings(
            database_url=settings.database_url,
            redis_url=redis_server.url,
            log_level="WARNING",
            whatsapp_api_base=url,
            worker_concurrency=RATE,
        )
        redis = lazy_redis(redis_server.url)
        runner = Runner(worker_settings, redis, provider_from(worker_settings, RATE), ControlListener(redis))
        try:
            yield World(api, runner, simulator_app.state.simulator, url, http)
        finally:
            await runner.provider.close()
            await redis.aclose()
            redis_server.stop()


@pytest_asyncio.fixture
async def world(api: Api, server: str, settings: Settings) -> AsyncIterator[World]:
    async with world_of(api, server, settings) as made:
        yield made


async def message_to(pk: int, to: str) -> Message:
    return await Message.get(campaign_id=pk, phone=to)


async def running_with_x_last(world: World, x: str, others: int = 15) -> tuple[int, asyncio.Task[str]]:
    """The running campaign: `others` phones, then X; returned once it has sent some."""
    pk = await world.campaign([*fresh(others), x], rate=RATE)
    task = world.run(pk)

    async def sending() -> bool:
        return (await Campaign.get(id=pk)).sent >= RATE

    await until(sending, 10, "the campaign sending")
    return pk, task


async def opted_out(world: World, x: str) -> OptOut:
    async def found() -> bool:
        return await OptOut.exists(workspace_id=world.api.principal.workspace_id, phone=x)

    await until(found, 10, f"{x} on the opt-out list")
    return await OptOut.get(workspace_id=world.api.principal.workspace_id, phone=x)


async def honoured(world: World, pk: int, task: asyncio.Task[str], x: str) -> None:
    """X was still PENDING when its opt-out committed, and the campaign ends without
    sending to it: X failed `opted_out`, never called."""
    assert (await message_to(pk, x)).status == "PENDING"  # its claim batch had not come
    assert await asyncio.wait_for(task, 30) == "completed"
    suppressed = await message_to(pk, x)
    assert (suppressed.status, suppressed.error_code, suppressed.attempts) == ("FAILED", OPTED_OUT_CODE, 0)
    assert x not in world.sent_to(pk) and len(world.sent_to(pk)) == 15
    await world.drained()
    counters = await assert_consistent(pk)
    assert (counters["sent"], counters["failed"]) == (15, 1)


async def test_a_stop_keyword_reply_stops_the_running_campaign_and_removing_it_lets_the_next_send(
    world: World,
) -> None:
    x = fresh(1)[0]
    earlier = await world.campaign([x])  # what X replies to
    assert await asyncio.wait_for(world.run(earlier), 10) == "completed"
    await world.drained()
    pk, task = await running_with_x_last(world, x)
    await world.control("inbound", **{"from": x.lstrip("+"), "text": "  Stop  "})
    row = await opted_out(world, x)
    assert (row.source, row.detail) == (OptOutSource.KEYWORD, 'replied "STOP"')
    await honoured(world, pk, task, x)
    # the reply counted for the message X replied to
    assert (await Campaign.get(id=earlier)).replied == 1
    await assert_consistent(earlier)
    # removing the opt-out lets the next campaign send to X
    removed = await world.api.gql(
        "mutation($p: String!) { removeOptOut(phone: $p) { optOut { phone } userErrors { code } } }", p=x
    )
    assert removed["removeOptOut"]["userErrors"] == []
    after = await world.campaign([x])
    assert await asyncio.wait_for(world.run(after), 10) == "completed"
    assert world.sent_to(after) == {x} and (await message_to(after, x)).status in ("SENT", "DELIVERED")


async def test_a_marketing_stop_in_whatsapp_stops_the_running_campaign_and_a_resume_lifts_it(world: World) -> None:
    x = fresh(1)[0]
    earlier = await world.campaign([x])
    assert await asyncio.wait_for(world.run(earlier), 10) == "completed"
    pk, task = await running_with_x_last(world, x)
    answer = await world.control("user_preferences", wa_id=x.lstrip("+"), value="stop", detail="Stop promotions")
    assert answer["posted"] is True
    row = await opted_out(world, x)
    assert (row.source, row.detail) == (OptOutSource.USER_PREFERENCES, "Stop promotions")
    await honoured(world, pk, task, x)
    # the user resumes in WhatsApp: the webhook lifts the opt-out, the next campaign sends
    await world.control("user_preferences", wa_id=x.lstrip("+"), value="resume")

    async def lifted() -> bool:
        return not await OptOut.exists(workspace_id=world.api.principal.workspace_id, phone=x)

    await until(lifted, 10, "the opt-out lifted by the resume")
    after = await world.campaign([x])
    assert await asyncio.wait_for(world.run(after), 10) == "completed"
    await world.drained()
    assert world.sent_to(after) == {x} and (await message_to(after, x)).status == "DELIVERED"


async def test_a_131050_failure_elsewhere_stops_the_running_campaign(world: World) -> None:
    x = fresh(1)[0]
    # X stopped marketing messages in WhatsApp, and we were not told: Meta's refusal tells
    await world.control("user_preferences", wa_id=x.lstrip("+"), value="stop", webhook=False)
    pk, task = await running_with_x_last(world, x)
    other = await world.campaign([x])
    assert await asyncio.wait_for(world.run(other), 10) == "completed"
    row = await opted_out(world, x)
    assert row.source is OptOutSource.ERROR_131050
    failed = await message_to(other, x)
    assert (failed.status, failed.error_code) == ("FAILED", "131050")
    await honoured(world, pk, task, x)
    assert world.simulator.ledger.refused_opted_out == 1  # the one send Meta refused, not B's


async def test_each_billable_message_is_counted_once_in_the_report(world: World) -> None:
    phones = fresh(6)
    pk = await world.campaign(phones)
    assert await asyncio.wait_for(world.run(pk), 10) == "completed"
    await world.drained()  # sent and delivered statuses both carry the pricing
    assert dict(await CampaignBillable.filter(campaign_id=pk).values_list("category", "count")) == {"marketing": 6}
    data = await world.api.gql(
        "query($id: ID!) { campaign(id: $id) { status report { billable { category count } } } }",
        id=to_global_id("Campaign", pk),
    )
    assert data["campaign"]["report"]["billable"] == [{"category": "marketing", "count": 6}]
    assert data["campaign"]["status"] == CampaignStatus.COMPLETED.value
    await assert_consistent(pk)
