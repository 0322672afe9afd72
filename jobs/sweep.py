"""Scheduled starts and the sweep: what is due, and what a lost job or a dead worker left.

Redis keeps nothing on disk here, so any job can be lost (a Redis restart, an effect
that failed after its commit). Every SWEEP_EVERY_S one worker (arq's unique cron) looks
at the database and repairs:
- SCHEDULED campaigns whose time has come start (their deferred job may be gone);
- recurring schedules whose next slot has come create and launch their occurrence
  (services/recurring.run_due; the sweep is their only trigger: 5 s resolution);
- campaigns nobody leases: the SENDING messages of a dead run are put in doubt, and
  in-doubt messages past the reconciliation window are resent or failed by policy
  (services/reconcile.py); also those of PAUSED, CANCELLED and FAILED campaigns, so
  none keeps SENDING rows (and `pending` > 0) for ever;
- active campaigns nobody leases: COMPLETED when nothing is unresolved, else their
  run job is enqueued again, under the id of their current state, so a campaign that
  waits for a free worker has one job in the queue however many sweeps pass.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from domain.lifecycle import ACTIVE, Action, CampaignStatus
from jobs.effects import LifecycleEffects
from models import Campaign
from runtime import clock
from services.reconcile import reconcile_campaign, unleased_campaigns
from services.recurring import run_due
from services.transitions import apply_system_action

if TYPE_CHECKING:
    from jobs.worker import Runner

log = logging.getLogger("campaigns.sweep")

SWEEP_EVERY_S = 5.0


async def start_scheduled(ctx: dict[str, Any], campaign_id: int, token: str) -> str:
    """SCHEDULED -> QUEUED if this job's token is still the campaign's and it is due
    (by the business clock, runtime/clock.py)."""
    now = clock.now()

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
    runner: Runner = ctx["runner"]
    effects, settings = runner.effects, runner.settings
    # leases and doubt windows are real time; what is due is business time
    now = datetime.now(UTC)
    report = {"started": 0, "requeued": 0, "completed": 0, "resent": 0, "failed_in_doubt": 0}
    due = await Campaign.filter(status=CampaignStatus.SCHEDULED, scheduled_at__lte=clock.now()).values_list(
        "id", "schedule_token"
    )
    for campaign_id, token in due:
        if await start_scheduled(ctx, campaign_id, token or "") == "started":
            report["started"] += 1
    # recurring schedules due by the business clock: each makes and launches its occurrence
    report["occurrences"] = len(await run_due(clock.now(), after=effects.after_transition))
    touched: set[int] = set()
    for c in await unleased_campaigns(quiet_for=SWEEP_EVERY_S, now=now):
        settled = await reconcile_campaign(c.id, settings.reconcile_window_s, settings.in_doubt_policy, now=now)
        if settled.resent or settled.failed:
            log.warning("campaign %s: %s in-doubt messages resent, %s failed", c.id, settled.resent, settled.failed)
            report["resent"] += settled.resent
            report["failed_in_doubt"] += settled.failed
            touched.add(c.id)
        if c.status not in ACTIVE:
            continue
        left = await runner.store.remaining(c.id)
        if c.status is CampaignStatus.PROCESSING and left.unresolved == 0:
            done = await apply_system_action(
                c.id, Action.COMPLETE, actor="sweep", expect=CampaignStatus.PROCESSING, after=effects.after_transition
            )
            report["completed"] += done is not None
        elif c.settled and (left.pending or c.status is CampaignStatus.QUEUED):
            try:
                await effects.enqueue_run(c.id, c.version, c.fence)
                report["requeued"] += 1
            except Exception as exc:
                log.warning("campaign %s: re-queueing failed (%s)", c.id, exc)
    if touched:
        runner.publisher.touched(touched)
    return report
