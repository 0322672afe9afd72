"""What a committed status change sets in motion: jobs to enqueue, workers to stop.

Called after the transaction commits (never inside it), by the API's mutations and by
the worker's own system transitions alike. Everything here is best effort: the
change is committed, so a Redis outage must not turn it into an error. What a lost
effect would have done, the sweep does (jobs/sweep.py): it starts due schedules and
re-rings active campaigns nobody leases. The one effect that carries a promise, "no
new provider call starts once pause returns", rests on the lease proof, not on Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from arq import ArqRedis
from arq.connections import RedisSettings
from redis.asyncio import ConnectionPool

from domain.lease import MAX_PROOF_S, StopConfirmation
from domain.lifecycle import ACTIVE, Action, CampaignStatus, Transition
from jobs.control import request_stop
from live.publisher import ProgressPublisher
from models import Campaign
from runtime import clock
from runtime.keys import JOB_RUN_CAMPAIGN, JOB_START_SCHEDULED, QUEUE, run_job_id, start_job_id, wake_job_id

log = logging.getLogger("campaigns.effects")

#: how long a pause or cancel waits for the lease holder's acknowledgement
ACK_WAIT_S = 2.0


def redis_settings(url: str) -> RedisSettings:
    """arq settings for redis://, rediss:// and unix:// URLs (the embedded Redis)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return RedisSettings(unix_socket_path=parts.path)
    return RedisSettings.from_dsn(url)


def lazy_redis(url: str) -> ArqRedis:
    """An arq pool that connects on first use and reconnects after outages: the API
    starts, and stays up, without Redis (arq's create_pool insists on a ping). No read
    timeout: the live hub's subscription blocks on it (docs/STACK.md)."""
    return ArqRedis(ConnectionPool.from_url(url, socket_connect_timeout=2), default_queue_name=QUEUE)


class LifecycleEffects:
    def __init__(self, arq: ArqRedis | None, publisher: ProgressPublisher | None = None) -> None:
        self.arq = arq
        self.publisher = publisher

    async def after_transition(self, campaign: Campaign, t: Transition) -> StopConfirmation | None:
        committed = time.monotonic()
        if self.publisher is not None and t.changes_status:
            await self.publisher.status_changed(campaign, t)
        if t.action in (Action.SCHEDULE, Action.RESCHEDULE) and campaign.schedule_token:
            await self._try("scheduling the start of", campaign.id, self.enqueue_start(campaign))
        if t.target is CampaignStatus.QUEUED:
            run = self.enqueue_run(campaign.id, campaign.version, campaign.lease_fence)
            await self._try("queueing the run of", campaign.id, run)
        if t.source in ACTIVE and t.target in (CampaignStatus.PAUSED, CampaignStatus.CANCELLED):
            return await self.stop_worker(campaign, t.action, committed)
        return None

    async def _try(self, what: str, campaign_id: int, effect: object) -> None:
        try:
            await effect  # type: ignore[misc]
        except Exception as exc:
            log.warning("%s campaign %s failed (%s); the sweep will do it", what, campaign_id, exc)

    async def enqueue_start(self, campaign: Campaign) -> None:
        if self.arq is None:
            return
        token = campaign.schedule_token or ""
        await self.arq.enqueue_job(
            JOB_START_SCHEDULED,
            campaign.id,
            token,
            _job_id=start_job_id(campaign.id, token),
            _defer_by=clock.real_delay(campaign.scheduled_at) if campaign.scheduled_at else None,
            _queue_name=QUEUE,
        )

    async def enqueue_run(self, campaign_id: int, version: int, fence: int) -> None:
        """The campaign's run job for its current version and lease fence: enqueued again
        for the same state (by the sweep, or a draining worker) it is the same job id, so
        a campaign waiting for a free worker has one job in the queue, not one per sweep."""
        if self.arq is None:
            return
        await self.arq.enqueue_job(
            JOB_RUN_CAMPAIGN, campaign_id, _job_id=run_job_id(campaign_id, version, fence), _queue_name=QUEUE
        )

    async def enqueue_wake(self, campaign_id: int, version: int, fence: int, at: datetime) -> None:
        """The campaign's run job, deferred to `at`: a campaign whose remaining messages
        all wait holds no lease meanwhile (domain/waiting.py); the sweep queues the same
        run if this job is lost."""
        if self.arq is None:
            return
        await self.arq.enqueue_job(
            JOB_RUN_CAMPAIGN,
            campaign_id,
            _job_id=wake_job_id(campaign_id, version, fence, at.timestamp()),
            # arq defers by the real clock: the business time `at` is this far away
            _defer_by=clock.real_delay(at),
            _queue_name=QUEUE,
        )

    async def stop_worker(self, campaign: Campaign, action: Action, committed: float) -> StopConfirmation:
        """Make sure no provider call of this campaign starts after we return: the lease
        holder's ack, or else waiting out the longest lease proof since the commit."""
        owner, expires = campaign.lease_owner, campaign.lease_expires_at
        if owner is None or expires is None or expires <= datetime.now(UTC):
            # A lease expires a whole TTL after its last renewal, long after its proof:
            # nobody can be starting calls. (A run taking the lease now finds it PAUSED.)
            return StopConfirmation.NOT_SENDING
        acked = False
        if self.arq is not None:
            try:
                acked = await request_stop(self.arq, campaign.id, action, owner, campaign.lease_fence, ACK_WAIT_S)
            except Exception as exc:
                log.warning("campaign %s: no stop message (%s); waiting out the lease proof", campaign.id, exc)
        if acked:
            return StopConfirmation.ACKNOWLEDGED
        log.warning("campaign %s: the lease holder did not acknowledge %s", campaign.id, action.value)
        left = committed + MAX_PROOF_S - time.monotonic()
        if left > 0:
            await asyncio.sleep(left)
        return StopConfirmation.LEASE_PROOF
