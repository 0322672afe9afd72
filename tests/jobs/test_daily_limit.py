"""The daily messaging limit end to end in this process: the real worker and provider,
the simulator enforcing the number's tier by its own clock, and the business clock
moved across the 24 hours. A campaign larger than its sender's tier sends up to the
tier, waits (PROCESSING, a reason, a next send time, no lease), and completes once the
window rolls; the simulator's ledger proves the tier was never crossed and every
recipient was accepted once."""

from __future__ import annotations

import random
import time
from dataclasses import replace
from functools import partial
from types import ModuleType
from typing import Any, cast

from arq import ArqRedis

from domain.ids import expect_id
from domain.lifecycle import Action, CampaignStatus
from domain.senders import LIMIT_MARGIN, LIMIT_WINDOW, DailyLimit, Tier
from domain.sending import CampaignToSend, Counts, Lease
from jobs.control import ControlListener
from jobs.effects import LifecycleEffects, lazy_redis
from jobs.worker import FALLBACK_TIER, TIER_RETRY_S, Runner
from models import Campaign, Message, Sender
from providers.whatsapp import provider_from
from runtime.keys import QUEUE
from services.transitions import apply_action
from settings import Settings
from simulator import SimulatorConfig
from tests.conftest import Api, phone
from tests.e2e.conftest import RedisServer
from tests.jobs.test_worker import _completed
from tests.jobs.test_worker_senders import templated_sender, worker_against, worker_on
from tests.services.test_receipts import assert_consistent
from tests.simulator.conftest import Sim, running
from tests.waiting import until

TIER_LIMIT = 250
N = 300
A_DAY_LATER = (LIMIT_WINDOW + LIMIT_MARGIN).total_seconds() + 1
SENDER = """query { senders { phoneNumberId messagingTier dailyLimit { tier limit used remaining resetsAt } } }"""
CAMPAIGN = """query($id: ID!) { campaign(id: $id) { status statusReason nextSendAt stats { sent failed pending } } }"""


async def waits_without_a_lease(pk: int) -> bool:
    c = await Campaign.get(id=pk)
    return c.status is CampaignStatus.PROCESSING and c.next_send_at is not None and c.lease_owner is None


async def accepted(sim: Sim, number: str) -> int:
    return int((await sim.ledger(number))["accepted"])


async def test_a_campaign_larger_than_its_tier_waits_a_day_for_the_rest_and_never_crosses_it(
    api: Api, settings: Settings, server: str, own_redis: RedisServer, redis: ArqRedis, business_clock: ModuleType
) -> None:
    config = SimulatorConfig(webhook_url=f"{server}/webhooks/whatsapp", app_secret=settings.whatsapp_app_secret)
    async with running(config) as sim:
        number = f"4100{random.randrange(10**10):010d}"
        # connected as connectSender does: the tier is read from the simulator's number
        await templated_sender(api, settings, sim, number, throughput=1000)
        assert (await Sender.get(phone_number_id=number)).messaging_tier == Tier.TIER_250.value
        view = await api.create_campaign(
            templateName="spring_sale", templateLanguage="en_US", body="{{name}} {{discount}}"
        )
        pk = expect_id(view["id"], "Campaign")
        added = await api.add(view["id"], *[(phone(i), {"name": f"Ann {i}", "discount": "20%"}) for i in range(N)])
        assert added["added"] == N
        worker = worker_against(settings, own_redis, sim, concurrency=20)
        effects = LifecycleEffects(redis)
        async with worker_on(worker):
            await apply_action(api.principal, pk, Action.SEND_NOW, after=effects.after_transition)
            await until(partial(waits_without_a_lease, pk), timeout=20, what="the campaign waits for the limit")
            assert await accepted(sim, number) == TIER_LIMIT
            shown = (await api.gql(CAMPAIGN, id=view["id"]))["campaign"]
            assert shown["status"] == "PROCESSING" and shown["nextSendAt"] is not None
            assert (
                "daily messaging limit" in shown["statusReason"]
                and f"{N - TIER_LIMIT} recipients" in (shown["statusReason"])
            )
            assert (shown["stats"]["sent"], shown["stats"]["failed"]) == (TIER_LIMIT, 0)
            (sender,) = [s for s in (await api.gql(SENDER))["senders"] if s["phoneNumberId"] == number]
            assert sender["dailyLimit"] == {
                "tier": "TIER_250",
                "limit": TIER_LIMIT,
                "used": TIER_LIMIT,
                "remaining": 0,
                "resetsAt": shown["nextSendAt"],
            }
            # the worker queued its wake-up for that time (deferred by the real clock)
            jobs = [job.decode() for job in await redis.zrange(QUEUE, 0, -1)]
            assert any(job.startswith(f"campaigns:wake:{pk}:") for job in jobs), jobs

            # a day later, by the business clock and the simulator's
            business_clock.advance(A_DAY_LATER)
            async with sim.http.post(f"{sim.url}/_simulator/clock", json={"offset": A_DAY_LATER}) as answer:
                assert answer.status == 200
            # what the sweep sees (something is due) and does: the campaign's run job again
            c = await Campaign.get(id=pk)
            assert c.next_send_at is not None and c.next_send_at <= business_clock.now()
            await effects.enqueue_run(c.id, c.version, c.lease_fence)
            await until(partial(_completed, pk), timeout=20, what="the campaign completed")

        ledger = await sim.ledger(number)
        limit = ledger["messaging_limit"]
        assert ledger["limit_refused"] == 0 and limit["refused"] == 0 and limit["peak"] <= TIER_LIMIT
        mine = ledger["campaigns"][str(pk)]
        assert (mine["accepted"], mine["distinct_phones"], mine["duplicate_sends"]) == (N, N, 0)
        assert await Message.filter(campaign_id=pk, status="FAILED").count() == 0
        c = await Campaign.get(id=pk)
        assert (c.sent, c.failed, c.next_send_at, c.status_reason) == (N, 0, None, None)
        await assert_consistent(pk)


class NoLookups:
    """A provider that cannot read a number (as a test's fake, or the network down)."""

    async def close(self) -> None:
        return None


async def test_the_bootstrap_sender_s_tier_is_set_or_read_from_its_number_else_the_lowest(
    settings: Settings, own_redis: RedisServer
) -> None:
    config = SimulatorConfig(messaging_limit_tier="TIER_2K", access_token="boot-token")
    async with running(config) as sim:
        redis = lazy_redis(own_redis.url)
        read = Settings(
            database_url=settings.database_url,
            whatsapp_api_base=sim.url,
            whatsapp_access_token="boot-token",
            whatsapp_phone_number_id=config.phone_number_id,
        )
        runner = Runner(read, redis, provider_from(read, 1), ControlListener(redis))
        try:
            assert await runner.bootstrap_tier() is Tier.TIER_2K
            await runner.provider.close()  # read once: later runs ask no more within the hour
            assert await runner.bootstrap_tier() is Tier.TIER_2K
            lease = Lease(
                CampaignToSend(1, 1, "Hi", None, None, None, None, 100), "w", 1, Counts(CampaignStatus.PROCESSING, 0, 0)
            )
            sending = await runner._sender_of(lease)
            assert sending is not None and sending[2] == DailyLimit(config.phone_number_id, Tier.TIER_2K)
            # set: no read at all
            fixed = Runner(
                replace(read, whatsapp_messaging_tier=Tier.TIER_10K), redis, cast(Any, NoLookups()), runner.control
            )
            assert await fixed.bootstrap_tier() is Tier.TIER_10K
            # unreadable: held to the lowest current tier, and read again sooner
            blind = Runner(read, redis, cast(Any, NoLookups()), runner.control)
            assert await blind.bootstrap_tier() is FALLBACK_TIER is Tier.TIER_250
            assert blind._tier is not None and blind._tier[1] - time.monotonic() <= TIER_RETRY_S
        finally:
            await redis.aclose()
