"""Subscriptions of the contract.

Payloads are flat snapshots built once per change, never per subscriber.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import strawberry

import models
from domain.errors import NotFound
from domain.ids import expect_id, to_global_id
from schema.context import Context
from schema.types import CampaignStats, CampaignStatus, stats_of
from services.campaigns import get_campaign

Info = strawberry.Info[Context, None]

POLL_SECONDS = 1.0


@strawberry.type(description="A flat snapshot, built from the published event: no database read per subscriber.")
class CampaignProgress:
    campaign_id: strawberry.ID
    status: CampaignStatus
    stats: CampaignStats
    send_rate: float = strawberry.field(description="messages per second over the last few seconds")
    at: datetime


@strawberry.type
class CampaignStatusChange:
    campaign_id: strawberry.ID
    name: str
    from_: CampaignStatus | None = strawberry.field(name="from")
    to: CampaignStatus
    reason: str | None
    at: datetime


def progress_of(c: models.Campaign, rate: float) -> CampaignProgress:
    return CampaignProgress(
        campaign_id=strawberry.ID(to_global_id("Campaign", c.id)),
        status=c.status,
        stats=CampaignStats.of(stats_of(c)),
        send_rate=rate,
        at=datetime.now(UTC),
    )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The current snapshot first, then one whenever the status or numbers change. "
        "It stays open after a terminal status: receipts keep arriving."
    )
    async def campaign_progress(self, info: Info, id: strawberry.ID) -> AsyncGenerator[CampaignProgress, None]:
        principal = info.context.require()
        pk = expect_id(id, "Campaign")
        campaign = await get_campaign(principal, pk)
        yield progress_of(campaign, 0.0)
        last = (campaign.version, stats_of(campaign))
        last_at, last_done = asyncio.get_running_loop().time(), campaign.total - campaign.pending
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                campaign = await get_campaign(principal, pk)
            except NotFound:
                return
            now_state = (campaign.version, stats_of(campaign))
            if now_state != last:
                now = asyncio.get_running_loop().time()
                done = campaign.total - campaign.pending
                rate = max(0.0, (done - last_done) / max(now - last_at, 1e-6))
                last, last_at, last_done = now_state, now, done
                yield progress_of(campaign, rate)

    @strawberry.subscription(
        description="Status changes of every campaign in the caller's workspace, for list dashboards."
    )
    async def campaign_status_changes(
        self,
        info: Info,
        status: list[CampaignStatus] | None = None,  # type: ignore[valid-type]
    ) -> AsyncGenerator[CampaignStatusChange, None]:
        principal = info.context.require()
        wanted = set(status or ())
        newest = (
            await models.CampaignEvent.filter(campaign__workspace_id=principal.workspace_id).order_by("-id").first()
        )
        last_event = newest.id if newest else 0
        while True:
            await asyncio.sleep(POLL_SECONDS)
            events = (
                await models.CampaignEvent.filter(campaign__workspace_id=principal.workspace_id, id__gt=last_event)
                .order_by("id")
                .prefetch_related("campaign")
            )
            for e in events:
                last_event = e.id
                if wanted and e.to_status not in wanted:
                    continue
                yield CampaignStatusChange(
                    campaign_id=strawberry.ID(to_global_id("Campaign", e.campaign_id)),
                    name=e.campaign.name,
                    from_=e.from_status,
                    to=e.to_status,
                    reason=e.reason,
                    at=e.at,
                )
