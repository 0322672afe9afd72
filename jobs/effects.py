"""What a committed status change sets in motion: jobs to enqueue, workers to stop.

Called after the transaction commits (never inside it), by the API's mutations and by
the worker's own system transitions alike.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import urlsplit

from arq import ArqRedis
from arq.connections import RedisSettings

from domain.lifecycle import ACTIVE, Action, CampaignStatus, Transition
from jobs.control import request_stop
from jobs.keys import JOB_RUN_CAMPAIGN, JOB_START_SCHEDULED, QUEUE, run_job_id, start_job_id
from models import Campaign
from services.progress import ProgressPublisher

log = logging.getLogger("campaigns.effects")


def redis_settings(url: str) -> RedisSettings:
    """arq settings for redis://, rediss:// and unix:// URLs (the embedded Redis)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return RedisSettings(unix_socket_path=parts.path)
    return RedisSettings.from_dsn(url)


class LifecycleEffects:
    def __init__(self, arq: ArqRedis, publisher: ProgressPublisher | None = None) -> None:
        self.arq = arq
        self.publisher = publisher

    async def after_transition(self, campaign: Campaign, t: Transition) -> None:
        if self.publisher is not None and t.changes_status:
            await self.publisher.status_changed(campaign, t)
        if t.action in (Action.SCHEDULE, Action.RESCHEDULE) and campaign.schedule_token:
            await self.enqueue_start(campaign)
        if t.target is CampaignStatus.QUEUED:
            await self.enqueue_run(campaign.id, campaign.version)
        if t.source in ACTIVE and t.target in (CampaignStatus.PAUSED, CampaignStatus.CANCELLED):
            await self.stop_worker(campaign, t.action)

    async def enqueue_start(self, campaign: Campaign) -> None:
        token = campaign.schedule_token or ""
        await self.arq.enqueue_job(
            JOB_START_SCHEDULED,
            campaign.id,
            token,
            _job_id=start_job_id(campaign.id, token),
            _defer_until=campaign.scheduled_at,
            _queue_name=QUEUE,
        )

    async def enqueue_run(self, campaign_id: int, version: int, suffix: str = "") -> None:
        await self.arq.enqueue_job(
            JOB_RUN_CAMPAIGN,
            campaign_id,
            _job_id=run_job_id(campaign_id, version) + suffix,
            _queue_name=QUEUE,
        )

    async def stop_worker(self, campaign: Campaign, action: Action) -> None:
        """Wait for the worker holding the lease to stop sending; if no live lease, a
        message is still published in case a run is just starting."""
        live = campaign.lease_owner is not None and (
            campaign.lease_expires_at is not None and campaign.lease_expires_at > datetime.now(UTC)
        )
        acked = await request_stop(self.arq, campaign.id, action.value, wait=2.0 if live else None)
        if live and not acked:
            log.warning("campaign %s: the lease holder did not acknowledge %s", campaign.id, action.value)
