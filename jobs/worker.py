"""The arq worker: scheduled starts, campaign runs and the sweep.

Redis jobs are only the doorbell; the database holds the truth. Every job is
idempotent against it: a stale start job finds another token and does nothing, a
second run job finds the lease taken, and the sweep re-rings for anything a lost job
missed (due schedules, active campaigns whose lease expired).
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import socket
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import cron, func
from tortoise import Tortoise
from tortoise.expressions import Q

from domain.lifecycle import Action, CampaignStatus
from domain.sending import RetryPolicy
from jobs.control import ControlListener
from jobs.effects import LifecycleEffects, redis_settings
from jobs.keys import JOB_RUN_CAMPAIGN, JOB_START_SCHEDULED, JOB_SWEEP, QUEUE
from jobs.ratelimit import AccountLimiter, Limiters, TokenBucket
from jobs.sender import CampaignRun
from models import Campaign
from providers.whatsapp import WhatsAppProvider
from services.progress import ProgressPublisher
from services.sending_store import SqlSendingStore
from services.transitions import apply_system_action
from settings import Settings

log = logging.getLogger("campaigns.worker")

LEASE_TTL_S = 15.0
#: the cyclic GC's youngest-generation threshold in this process (CPython's default: 700)
GC_GEN0_THRESHOLD = 50_000
RUN_TIMEOUT_S = 24 * 3600
SWEEP_EVERY_S = 5


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
        self.account = AccountLimiter(redis, settings.whatsapp_phone_number_id, settings.whatsapp_rate_limit)
        self.active: dict[int, CampaignRun | None] = {}

    async def run(self, campaign_id: int) -> str:
        if campaign_id in self.active:
            return "already running here"
        self.active[campaign_id] = None
        early_stop: list[str] = []

        def stop(action: str) -> Awaitable[None] | None:
            run = self.active.get(campaign_id)
            if run is None:
                early_stop.append(action)  # arrived before the run object exists
                return None
            run.stop(action.lower())
            return run.quiet(within=1.5)  # the API waits up to 2 s for the ack

        # Listen before taking the lease, so a pause right after it is never missed.
        self.control.register(campaign_id, stop)
        try:
            campaign = await self.store.acquire_lease(campaign_id, self.owner, LEASE_TTL_S)
            if campaign is None:
                return "not leased"
            try:
                recovered = await self.store.recover_in_doubt(campaign_id, self.provider.honours_idempotency)
                if recovered:
                    log.warning("campaign %s: %s in-doubt messages recovered", campaign_id, recovered)
                limiters: list[TokenBucket | AccountLimiter] = [self.account]
                if campaign.send_rate:
                    limiters.insert(0, TokenBucket(campaign.send_rate))
                run = CampaignRun(
                    self.store,
                    self.provider,
                    campaign,
                    self.owner,
                    Limiters(limiters),
                    concurrency=self.settings.worker_concurrency,
                    lease_ttl=LEASE_TTL_S,
                    policy=RetryPolicy(max_attempts=self.settings.worker_max_attempts),
                    on_progress=lambda: self.publisher.touched([campaign_id]),
                )
                self.active[campaign_id] = run
                if early_stop:
                    run.stop(early_stop[0].lower())
                ended = await run.run()
                log.info("campaign %s run ended: %s", campaign_id, ended)
                return ended
            finally:
                await self.store.release_lease(campaign_id, self.owner)
        finally:
            self.control.unregister(campaign_id)
            self.active.pop(campaign_id, None)


# ------------------------------------------------------------------------ jobs


async def run_campaign(ctx: dict[str, Any], campaign_id: int) -> str:
    runner: Runner = ctx["runner"]
    return await runner.run(campaign_id)


async def start_scheduled(ctx: dict[str, Any], campaign_id: int, token: str) -> str:
    """SCHEDULED -> QUEUED if this job's token is still the campaign's and it is due."""
    now = datetime.now(UTC)

    def current(c: Campaign) -> bool:
        return c.schedule_token == token and c.scheduled_at is not None and c.scheduled_at <= now + timedelta(seconds=1)

    effects: LifecycleEffects = ctx["runner"].effects
    started = await apply_system_action(
        campaign_id,
        Action.START,
        actor="scheduler",
        expect=CampaignStatus.SCHEDULED,
        guard=current,
        after=effects.after_transition,
    )
    return "started" if started else "stale"


async def sweep(ctx: dict[str, Any]) -> dict[str, int]:
    """Catch what a lost job missed: due schedules, and active campaigns nobody leases."""
    effects: LifecycleEffects = ctx["runner"].effects
    now = datetime.now(UTC)
    started = 0
    due = await Campaign.filter(status=CampaignStatus.SCHEDULED, scheduled_at__lte=now).values_list(
        "id", "schedule_token"
    )
    for campaign_id, token in due:
        if await start_scheduled(ctx, campaign_id, token or "") == "started":
            started += 1
    orphans = await Campaign.filter(
        Q(status__in=[CampaignStatus.QUEUED, CampaignStatus.PROCESSING]),
        Q(lease_owner__isnull=True) | Q(lease_expires_at__lt=now),
        updated_at__lt=now - timedelta(seconds=SWEEP_EVERY_S),
    ).values_list("id", "version")
    for campaign_id, version in orphans:
        await effects.enqueue_run(campaign_id, version, suffix=f":sweep:{int(now.timestamp())}")
    return {"started": started, "requeued": len(orphans)}


# ----------------------------------------------------------------- lifecycle


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or Settings.from_env()
    # Keep the ORM's context object: closing it from this task context on shutdown is
    # what lets the worker exit on SIGTERM (STACK.md).
    ctx["orm"] = await Tortoise.init(config=settings.tortoise_config(), _enable_global_fallback=True)
    provider = WhatsAppProvider(
        settings.provider_base_url(),
        settings.whatsapp_api_version,
        settings.whatsapp_phone_number_id,
        settings.whatsapp_access_token,
        concurrency=settings.worker_concurrency,
        honours_idempotency=settings.whatsapp_idempotency,
    )
    control = ControlListener(ctx["redis"])
    await control.start()
    ctx["runner"] = runner = Runner(settings, ctx["redis"], provider, control)
    await runner.publisher.start()
    _tune_gc()


def _tune_gc() -> None:
    """Sending is CPU-bound at low provider latency, and with CPython's defaults the
    cyclic GC took about a fifth of the worker's CPU per message: each of the ~200
    calls in flight keeps dozens of container objects alive, so every 700 allocations
    a young collection traversed them, promoted them, and full collections walked the
    whole heap of modules and ORM metadata again and again. Freezing what startup
    built keeps full collections off that heap (it lives as long as the process), and
    a larger young generation lets per-call objects die by reference count before a
    collection sees them. Memory stays bounded: collections still run, just less often."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


async def shutdown(ctx: dict[str, Any]) -> None:
    runner: Runner | None = ctx.get("runner")
    if runner is not None:
        await runner.publisher.close()
        await runner.control.close()
        await runner.provider.close()
    orm = ctx.get("orm")
    if orm is not None:
        await orm.close_connections()


def worker_settings(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for arq.Worker; `campaigns worker` and tests build from this."""
    options: dict[str, Any] = {
        "functions": [
            func(run_campaign, name=JOB_RUN_CAMPAIGN, timeout=RUN_TIMEOUT_S, max_tries=1000),
            func(start_scheduled, name=JOB_START_SCHEDULED, max_tries=5),
        ],
        "cron_jobs": [
            cron(
                sweep,
                name=JOB_SWEEP,
                second=set(range(0, 60, SWEEP_EVERY_S)),
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
        "ctx": {"settings": settings},
    }
    options.update(overrides)
    return options
