"""Sending from each workspace's own sender (jobs/worker.py `_sender_of`): a worker in
this process, the real provider, and the simulator serving two business numbers with
their own tokens and throughputs. Two workspaces send at once, each through its own
number within that number's rate, and their receipts come back routed by number."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial

from arq import ArqRedis

from domain.ids import expect_id
from domain.lifecycle import Action, CampaignStatus
from domain.senders import Tier
from jobs.effects import LifecycleEffects
from jobs.worker import CampaignWorker, worker_settings
from models import Campaign, Message
from providers.whatsapp import WhatsAppProvider
from services import templates
from services.senders import connect_sender, ensure_sender
from services.tokens import TokenBox
from services.transitions import apply_action
from settings import Settings
from simulator import SimulatorConfig
from tests.conftest import Api, phone
from tests.e2e.conftest import RedisServer
from tests.jobs.test_worker import _completed, settle_jobs
from tests.services.test_receipts import assert_consistent
from tests.simulator.conftest import Sim, running
from tests.waiting import until

N = 60


@dataclass(frozen=True)
class Number:
    phone_number_id: str
    throughput: int
    access_token: str


NUMBERS = {
    "a": Number("400000000000001", 20, "EAAG-shop-a"),
    "b": Number("400000000000002", 40, "EAAG-shop-b"),
}


def worker_against(settings: Settings, own_redis: RedisServer, sim: Sim, concurrency: int | None = None) -> Settings:
    """A worker's settings for these tests: the test database, the test's own Redis, the
    simulator as the Cloud API, and the test settings' sender token key."""
    worker = Settings(
        database_url=settings.database_url,
        redis_url=own_redis.url,
        log_level="WARNING",
        whatsapp_api_base=sim.url,
        sender_token_key=settings.sender_token_key,
    )
    return worker if concurrency is None else replace(worker, worker_concurrency=concurrency)


@asynccontextmanager
async def worker_on(settings: Settings) -> AsyncIterator[CampaignWorker]:
    worker = CampaignWorker(
        **worker_settings(
            settings, cron_jobs=[], handle_signals=False, poll_delay=0.1, ctx={"settings": settings, "shared_orm": True}
        )
    )
    task = asyncio.create_task(worker.async_run())
    try:
        await until(lambda: "runner" in worker.ctx or task.done(), what="worker started")
        yield worker
    finally:
        worker.handle_sig(signal.SIGUSR1)
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        settle_jobs(worker)
        await worker.close()


async def test_two_workspaces_send_at_once_each_through_its_own_number_at_its_own_rate(
    api: Api, other_api: Api, settings: Settings, server: str, own_redis: RedisServer, redis: ArqRedis
) -> None:
    config = SimulatorConfig(webhook_url=f"{server}/webhooks/whatsapp", app_secret=settings.whatsapp_app_secret)
    sim: Sim
    async with running(config) as sim:
        box = TokenBox(settings.sender_token_key)
        campaigns: dict[str, int] = {}
        for (label, number), who in zip(NUMBERS.items(), (api, other_api), strict=True):
            reply = await sim.register(
                phone_number_id=number.phone_number_id,
                waba_id="500000000000001",
                display_phone_number=f"1555000{label}",
                access_token=number.access_token,
                throughput=number.throughput,
            )
            assert reply.status in (200, 201), reply.body
            sender = await ensure_sender(
                who.principal.workspace_id,
                box,
                name=f"shop {label}",
                waba_id="500000000000001",
                phone_number_id=number.phone_number_id,
                display_phone_number=f"1555000{label}",
                access_token=number.access_token,
                throughput=number.throughput,
                tier=Tier.TIER_10K,
            )
            client = WhatsAppProvider(sim.url, "v26.0", concurrency=2)
            try:  # every WABA has Meta's hello_world: a connected sender sends templates only
                await templates.sync(who.principal.workspace_id, sender.id, box, client)
            finally:
                await client.close()
            view = await who.ready_campaign(N, templateName="hello_world", templateLanguage="en_US", body="Hello")
            campaigns[label] = expect_id(view["id"], "Campaign")
        worker = worker_against(settings, own_redis, sim, concurrency=10)
        effects = LifecycleEffects(redis)
        async with worker_on(worker):
            started = time.monotonic()
            for label, who in zip(NUMBERS, (api, other_api), strict=True):
                await apply_action(who.principal, campaigns[label], Action.SEND_NOW, after=effects.after_transition)
            took: dict[str, float] = {}
            for label in ("b", "a"):  # b (40/s) finishes first
                await until(partial(_completed, campaigns[label]), timeout=30, what=f"campaign {label} completed")
                took[label] = time.monotonic() - started
        for label, number in NUMBERS.items():
            ledger = await sim.ledger(number.phone_number_id)
            assert (ledger["accepted"], ledger["rate_limited"]) == (N, 0), ledger
            rate = number.throughput
            # within its number's rate: N messages take about N / rate (the budget's
            # burst lets the first few go at once), never much faster
            assert took[label] >= (N - rate) / rate, (label, took)
        assert took["b"] < took["a"]
        # each number carried its own workspace's recipients only
        for label, number in NUMBERS.items():
            query = {"phone_number_id": number.phone_number_id}
            async with sim.http.get(f"{sim.url}/_simulator/ledger/messages", params=query) as answer:
                listed = (await answer.json())["messages"]
            phones = sorted(m["to"] for m in listed)
            ours = await Message.filter(campaign_id=campaigns[label]).values_list("phone", flat=True)
            assert phones == sorted(str(p).lstrip("+") for p in ours)
        # receipts come back through the webhook, routed by number, to the right campaign
        for pk in campaigns.values():

            async def delivered(pk: int = pk) -> bool:
                return (await assert_consistent(pk))["delivered"] > N // 2

            await until(delivered, timeout=20, what="receipts applied")


async def templated_sender(api: Api, settings: Settings, sim: Sim, number: str, throughput: int) -> str:
    """A sender connected as connectSender does it (the number checked with the
    simulator's lookup), on a new number of the simulator's first WABA (its sample
    templates: spring_sale {{1}} {{2}}, order_update {{first_name}} {{order_id}}), then
    its templates synced; returns the WABA id."""
    waba = sim.simulator.config.waba_id
    reply = await sim.register(
        phone_number_id=number,
        waba_id=waba,
        display_phone_number="15550009",
        access_token="EAAG-t",
        throughput=throughput,
    )
    assert reply.status in (200, 201), reply.body
    box = TokenBox(settings.sender_token_key)
    client = WhatsAppProvider(sim.url, "v26.0", concurrency=2)
    try:
        view = await connect_sender(
            api.principal,
            box,
            client,
            name="shop",
            waba_id=waba,
            phone_number_id=number,
            access_token="EAAG-t",
            throughput=throughput,
        )
        assert view.display_phone_number == "15550009"
        await templates.sync(api.principal.workspace_id, view.id, box, client)
    finally:
        await client.close()
    return waba


async def test_a_template_paused_mid_campaign_pauses_the_campaign_with_the_reason(
    api: Api, settings: Settings, server: str, own_redis: RedisServer, redis: ArqRedis
) -> None:
    config = SimulatorConfig(webhook_url=f"{server}/webhooks/whatsapp", app_secret=settings.whatsapp_app_secret)
    async with running(config) as sim:
        number = "400000000000009"
        waba = await templated_sender(api, settings, sim, number, throughput=10)
        view = await api.create_campaign(
            templateName="spring_sale", templateLanguage="en_US", body="{{name}} {{discount}}"
        )
        pk = expect_id(view["id"], "Campaign")
        await api.add(view["id"], *[(phone(i), {"name": f"Ann {i}", "discount": "20%"}) for i in range(80)])
        worker = worker_against(settings, own_redis, sim, concurrency=4)
        async with worker_on(worker):
            await apply_action(api.principal, pk, Action.SEND_NOW, after=LifecycleEffects(redis).after_transition)

            async def some_sent() -> bool:
                return (await sim.ledger(number))["accepted"] >= 10

            await until(some_sent, what="the campaign is sending")
            async with sim.http.post(
                f"{sim.url}/_simulator/templates/{waba}/spring_sale/en_US/status",
                json={"status": "PAUSED", "reason": "LOW_QUALITY"},
            ) as answer:
                assert answer.status == 200, await answer.text()

            async def paused() -> bool:
                return (await Campaign.get(id=pk)).status is CampaignStatus.PAUSED

            await until(paused, timeout=20, what="the campaign paused")
        campaign = await Campaign.get(id=pk)
        assert (
            campaign.status_reason is not None and "paused the template spring_sale (en_US)" in campaign.status_reason
        )
        assert campaign.pending > 0  # stopped mid-way
        # what went out was the template, its parameters filled from the variables
        query = {"phone_number_id": number}
        async with sim.http.get(f"{sim.url}/_simulator/ledger/messages", params=query) as answer:
            first = (await answer.json())["messages"][0]
        assert first["template"]["name"] == "spring_sale" and "20% off" in first["template"]["body"]


async def test_a_named_template_is_sent_with_its_parameter_names(
    api: Api, settings: Settings, server: str, own_redis: RedisServer, redis: ArqRedis
) -> None:
    config = SimulatorConfig(webhook_url=f"{server}/webhooks/whatsapp", app_secret=settings.whatsapp_app_secret)
    async with running(config) as sim:
        number = "400000000000010"
        await templated_sender(api, settings, sim, number, throughput=80)
        view = await api.create_campaign(
            templateName="order_update", templateLanguage="en_US", body="{{name}} {{order}}"
        )
        await api.add(view["id"], *[(phone(100 + i), {"name": f"Ann {i}", "order": f"A{i}"}) for i in range(5)])
        pk = expect_id(view["id"], "Campaign")
        worker = worker_against(settings, own_redis, sim)
        async with worker_on(worker):
            await apply_action(api.principal, pk, Action.SEND_NOW, after=LifecycleEffects(redis).after_transition)
            await until(partial(_completed, pk), what="sent")
        async with sim.http.get(f"{sim.url}/_simulator/ledger/messages", params={"phone_number_id": number}) as answer:
            bodies = sorted(m["template"]["body"] for m in (await answer.json())["messages"])
        assert bodies == [f"Hi Ann {i}, your order A{i} is on its way." for i in range(5)]
        assert (await Campaign.get(id=pk)).sent == 5
