"""The arq worker: scheduled starts, campaign runs, the sweep, and the outbound
webhook dispatcher (jobs/webhooks.py).

Redis jobs are only the doorbell; the database holds the truth. Every job is
idempotent against it: a stale start job finds another token and does nothing, a
second run job finds the lease taken, and the sweep (jobs/sweep.py) re-rings for
anything a lost job missed.

Shutdown (SIGTERM, as every deploy sends): the worker stops every run at once, each
waits (bounded) for its calls in flight, writes their outcomes, gives its unstarted
claims back, releases its lease and re-queues its campaign, so another worker goes on
at once. A Redis outage does not end the worker: its runs keep sending (the rate
limiter paces locally, stops still arrive through lease renewals) and it takes jobs
again once Redis is back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable
from signal import Signals
from typing import Any

from arq import cron, func
from arq.worker import Worker
from redis.exceptions import RedisError
from tortoise import Tortoise

from domain.lease import LeaseTimes
from domain.lifecycle import ACTIVE, Action
from domain.senders import DailyLimit, Tier, parse_tier
from domain.sending import Lease, Provider, RetryPolicy
from jobs.control import ControlAck, ControlListener
from jobs.effects import LifecycleEffects, redis_settings
from jobs.ratelimit import AccountLimiter, Limiters, TokenBucket
from jobs.run_config import STOPPED_BY, RunConfig, RunEnded
from jobs.sender import CampaignRun
from jobs.sweep import SWEEP_EVERY_S, start_scheduled, sweep
from jobs.webhooks import WebhookDispatcher
from live.publisher import ProgressPublisher
from models import Campaign
from providers.whatsapp import NumberInfo, WhatsAppProvider, provider_from
from runtime import gc as gc_tuning
from runtime.keys import JOB_RUN_CAMPAIGN, JOB_START_SCHEDULED, JOB_SWEEP, QUEUE
from services import senders
from services.sending_store import SqlSendingStore
from services.tokens import TokenBox
from settings import Settings

log = logging.getLogger("campaigns.worker")

RUN_TIMEOUT_S = 24 * 3600
#: how often the bootstrap sender's messaging tier is read again from its number (it
#: changes as Meta raises or lowers it); after a failed read, sooner
TIER_READ_EVERY_S = 3600.0
TIER_RETRY_S = 300.0
#: the tier a sender is held to while its own cannot be read: the lowest current one
FALLBACK_TIER = Tier.TIER_250


class Runner:
    """Runs campaigns in this worker process: one CampaignRun per campaign it leases."""

    def __init__(self, settings: Settings, redis: Any, provider: WhatsAppProvider, control: ControlListener) -> None:
        self.settings = settings
        self.redis = redis
        self.provider = provider
        self.control = control
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.publisher = ProgressPublisher(redis)
        self.effects = LifecycleEffects(redis, self.publisher)
        self.store = SqlSendingStore(after=self.effects.after_transition)
        self.box = TokenBox(settings.sender_token_key)
        #: the bootstrap sender's budget (WHATSAPP_* variables): campaigns without a sender
        self.account = AccountLimiter(redis, settings.whatsapp_phone_number_id, settings.whatsapp_rate_limit)
        #: one budget per connected sender's number, shared with every other worker through Redis
        self.accounts: dict[str, AccountLimiter] = {}
        self.times = LeaseTimes.for_ttl(settings.worker_lease_ttl_s)
        #: the bootstrap sender's tier as last read from its number, and when to read again
        self._tier: tuple[Tier, float] | None = None
        self._tier_lock = asyncio.Lock()
        self.runs: dict[int, CampaignRun | None] = {}
        self.leases: dict[int, Lease] = {}
        self.closing = False

    def shutdown(self) -> None:
        """Stop every run (synchronously: no call starts after this returns); each then
        drains and hands its campaign on. No new run starts in this process."""
        self.closing = True
        for run in self.runs.values():
            if run is not None:
                run.stop(RunEnded.SHUTDOWN)

    async def _sender_of(self, lease: Lease) -> tuple[Provider, AccountLimiter, DailyLimit] | None:
        """The provider, rate budget and messaging limit of the campaign's sender; None:
        its sender was disconnected (which is refused while it sends, so only a race
        gets here)."""
        sender_id = lease.campaign.sender_id
        if sender_id is None:
            number = self.settings.whatsapp_phone_number_id
            return self.provider, self.account, DailyLimit(number, await self.bootstrap_tier())
        found = await senders.credentials(self.box, sender_id)
        if found is None:
            return None
        account = self.accounts.get(found.phone_number_id)
        if account is None or account.rate != found.throughput:
            account = AccountLimiter(self.redis, found.phone_number_id, found.throughput)
            self.accounts[found.phone_number_id] = account
        provider = self.provider.for_number(found.phone_number_id, found.access_token)
        return provider, account, DailyLimit(found.phone_number_id, found.tier)

    async def bootstrap_tier(self) -> Tier:
        """The bootstrap sender's messaging tier: WHATSAPP_MESSAGING_TIER, else read from
        its number (`whatsapp_business_manager_messaging_limit`) when this worker first
        sends from it and every TIER_READ_EVERY_S; FALLBACK_TIER while it cannot be read
        (never a larger limit than the number may have)."""
        if self.settings.whatsapp_messaging_tier is not None:
            return self.settings.whatsapp_messaging_tier
        async with self._tier_lock:  # runs starting together read it once
            if self._tier is not None and time.monotonic() < self._tier[1]:
                return self._tier[0]
            read = await self._read_tier()
            tier = read or (self._tier[0] if self._tier is not None else FALLBACK_TIER)
            self._tier = (tier, time.monotonic() + (TIER_READ_EVERY_S if read else TIER_RETRY_S))
            return tier

    async def _read_tier(self) -> Tier | None:
        s = self.settings
        try:
            async with asyncio.timeout(5):
                info = await self.provider.lookup_number(s.whatsapp_phone_number_id, s.whatsapp_access_token)
        except Exception as exc:  # a provider without lookups (a test's), the network
            info = None
            log.warning("reading the messaging tier of %s failed (%s)", s.whatsapp_phone_number_id, exc)
        if not isinstance(info, NumberInfo):
            if info is not None:
                log.warning("reading the messaging tier of %s: %s", s.whatsapp_phone_number_id, info.message)
            return None
        tier = parse_tier(info.messaging_limit)
        if tier is None:
            log.warning("number %s reports no known tier (%r)", s.whatsapp_phone_number_id, info.messaging_limit)
        return tier

    def _config(self, lease: Lease, account: AccountLimiter) -> RunConfig:
        s = self.settings
        rates = [float(r) for r in (lease.campaign.send_rate, account.rate) if r]
        return RunConfig(
            concurrency=s.worker_concurrency,
            lease=self.times,
            rate=min(rates) if rates else None,
            drain_timeout=s.worker_drain_timeout_s,
            reconcile_window=s.reconcile_window_s,
            in_doubt_policy=s.in_doubt_policy,
        )

    async def run(self, campaign_id: int) -> str:
        if self.closing:
            await self._hand_off(campaign_id)  # taken just before the signal: for another worker
            return "shutting down"
        if campaign_id in self.runs:
            return "already running here"
        self.runs[campaign_id] = None
        early: list[Action] = []

        def stop(action: Action) -> Awaitable[None] | None:
            run = self.runs.get(campaign_id)
            if run is None:
                early.append(action)  # arrived before the run exists: applied when it does
                return None
            run.stop(STOPPED_BY.get(action, RunEnded.PAUSED))
            return run.quiet(within=1.5)  # the API waits up to 2 s for the ack

        def holder() -> ControlAck | None:
            lease = self.leases.get(campaign_id)
            if lease is None or self.runs.get(campaign_id) is None:
                return None
            return {"owner": lease.owner, "fence": lease.fence}

        # Listen before taking the lease, so a pause right after it is never missed.
        self.control.register(campaign_id, stop, holder)
        try:
            proven_at = (time.monotonic(), time.time())  # read before the acquisition is sent
            lease = await self.store.acquire_lease(campaign_id, self.owner, self.times.ttl)
            if lease is None:
                return "not leased"
            return await self._send(lease, proven_at, early)
        finally:
            self.control.unregister(campaign_id)
            self.runs.pop(campaign_id, None)
            self.leases.pop(campaign_id, None)

    async def _send(self, lease: Lease, proven_at: tuple[float, float], early: list[Action]) -> str:
        campaign_id = lease.campaign.id
        ended: RunEnded | None = None
        try:
            sending = await self._sender_of(lease)
            if sending is None:
                await self.store.transition(
                    campaign_id, Action.FAIL, "worker", "Its sender was disconnected: duplicate it and pick another."
                )
                return "sender disconnected"
            provider, account, quota = sending
            # the sender's limit travels with the lease: the store's claim applies it
            lease = dataclasses.replace(lease, campaign=dataclasses.replace(lease.campaign, daily_limit=quota))
            limiters: list[TokenBucket | AccountLimiter] = [account]
            if lease.campaign.send_rate:
                limiters.insert(0, TokenBucket(lease.campaign.send_rate))
            run = CampaignRun(
                self.store,
                provider,
                lease,
                Limiters(limiters),
                config=self._config(lease, account),
                policy=RetryPolicy(max_attempts=self.settings.worker_max_attempts),
                proven_at=proven_at,
                on_progress=lambda: self.publisher.touched([campaign_id]),
            )
            self.leases[campaign_id], self.runs[campaign_id] = lease, run
            for action in early:
                run.stop(STOPPED_BY.get(action, RunEnded.PAUSED))
            if self.closing:
                run.stop(RunEnded.SHUTDOWN)
            ended = await run.run()
            log.info("campaign %s run ended: %s", campaign_id, ended.value)
            if ended is RunEnded.WAITING:
                await self._wake_later(campaign_id)
            return ended.value
        except asyncio.CancelledError:
            ended = RunEnded.SHUTDOWN  # drained by the run; hand the campaign on below
            raise
        finally:
            await asyncio.shield(self._release(lease, hand_off=ended is RunEnded.SHUTDOWN))

    async def _release(self, lease: Lease, hand_off: bool) -> None:
        """Release the lease (else it expires by itself) and, after a shutdown, queue the
        campaign again at once, for another worker."""
        try:
            async with asyncio.timeout(5):
                await self.store.release_lease(lease)
        except Exception as exc:
            log.warning("campaign %s: releasing the lease failed (%s); it expires by itself", lease.campaign.id, exc)
        if hand_off:
            await self._hand_off(lease.campaign.id)

    async def _wake_later(self, campaign_id: int) -> None:
        """Everything the campaign has left waits (domain/waiting.py): its run job again,
        deferred to when the next message may go out (best effort: the sweep queues it
        once one is due). Nothing to do when only in-doubt messages are left."""
        try:
            async with asyncio.timeout(5):
                c = await Campaign.get(id=campaign_id)
                if c.next_send_at is not None and c.status in ACTIVE:
                    await self.effects.enqueue_wake(c.id, c.version, c.lease_fence, c.next_send_at)
        except Exception as exc:
            log.warning("campaign %s: scheduling its wake-up failed (%s); the sweep will", campaign_id, exc)

    async def _hand_off(self, campaign_id: int) -> None:
        """Queue the campaign's run job again (best effort: the sweep would, later)."""
        try:
            async with asyncio.timeout(5):
                c = await Campaign.get(id=campaign_id)
                if c.status in ACTIVE:
                    await self.effects.enqueue_run(c.id, c.version, c.lease_fence)
        except Exception as exc:
            log.warning("campaign %s: handing it on failed (%s); the sweep will", campaign_id, exc)


# ------------------------------------------------------------------------ jobs


async def run_campaign(ctx: dict[str, Any], campaign_id: int) -> str:
    runner: Runner = ctx["runner"]
    return await runner.run(campaign_id)


# ----------------------------------------------------------------- lifecycle


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or Settings.from_env()
    if not ctx.get("shared_orm"):
        # Keep the ORM's context object: closing it from this task context on shutdown is
        # what lets the worker exit on SIGTERM (docs/STACK.md). (`campaigns dev` shares
        # the API's ORM instead: a second init would close the API's connections.)
        ctx["orm"] = await Tortoise.init(config=settings.tortoise_config(), _enable_global_fallback=True)
    provider = provider_from(settings, settings.worker_concurrency)
    control = ControlListener(ctx["redis"])
    await control.start()
    ctx["runner"] = runner = Runner(settings, ctx["redis"], provider, control)
    await runner.publisher.start()
    ctx["webhooks"] = webhooks = WebhookDispatcher.from_settings(settings)
    await webhooks.start()
    if not ctx.get("shared_orm"):  # `campaigns dev` tunes its one process itself
        gc_tuning.tune()


async def shutdown(ctx: dict[str, Any]) -> None:
    webhooks: WebhookDispatcher | None = ctx.get("webhooks")
    if webhooks is not None:
        await webhooks.close()
    runner: Runner | None = ctx.get("runner")
    if runner is not None:
        await runner.publisher.close()
        await runner.control.close()
        await runner.provider.close()
    orm = ctx.get("orm")
    if orm is not None:
        await orm.close_connections()


class CampaignWorker(Worker):
    """arq's Worker with the two changes sending needs: a SIGTERM (or SIGINT) first
    stops every run, so they drain within `job_completion_wait` instead of being
    cancelled mid-call; and a Redis outage pauses the poll loop instead of ending the
    process (arq's loop raises on the first failed poll)."""

    _redis_down = False

    def handle_sig_wait_for_completion(self, signum: Signals) -> None:
        runner: Runner | None = self.ctx.get("runner")
        if runner is not None:
            runner.shutdown()
        super().handle_sig_wait_for_completion(signum)

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except (RedisError, OSError) as exc:
            if not self._redis_down:
                log.warning("worker lost Redis (%s); its runs go on, polling again in 1 s", exc)
            self._redis_down = True
            await asyncio.sleep(1)
            return
        if self._redis_down:
            log.warning("worker has Redis again")
            self._redis_down = False

    async def drain(self, within: float) -> None:
        """Stop every run and wait (bounded) for the jobs to end: `campaigns dev`, which
        handles the signals itself, calls this before closing the worker."""
        runner: Runner | None = self.ctx.get("runner")
        if runner is not None:
            runner.shutdown()
        self.allow_pick_jobs = False
        running = [t for t in self.tasks.values() if not t.done()]
        if running:
            await asyncio.wait(running, timeout=within)


def worker_settings(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for CampaignWorker; `campaigns worker` and tests build from this."""
    options: dict[str, Any] = {
        "functions": [
            func(run_campaign, name=JOB_RUN_CAMPAIGN, timeout=RUN_TIMEOUT_S, max_tries=1000),
            func(start_scheduled, name=JOB_START_SCHEDULED, max_tries=5),
        ],
        "cron_jobs": [
            cron(
                sweep,
                name=JOB_SWEEP,
                second=set(range(0, 60, int(SWEEP_EVERY_S))),
                unique=True,
                run_at_startup=True,
            )
        ],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "queue_name": QUEUE,
        "redis_settings": redis_settings(settings.redis_url or "redis://127.0.0.1:6379/0"),
        "max_jobs": settings.worker_max_campaigns + 2,
        "keep_result": 0,
        # time for the runs to drain after SIGTERM before arq cancels them
        "job_completion_wait": int(settings.worker_drain_timeout_s + 5),
        "ctx": {"settings": settings},
    }
    options.update(overrides)
    return options
