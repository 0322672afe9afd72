"""Subscriptions of the contract, fed by the process's LiveHub (live/hub.py).

Payloads are flat snapshots built once per event and shared by every subscriber: no
database read per subscriber per event. Only the first snapshot of a subscription is
read from the database; over WebSockets, later ones are rendered once per group of
identical subscriptions and written to each socket (schema/broadcast.py).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import strawberry

from domain.access import check, needed
from domain.errors import Conflict, DomainError
from domain.ids import expect_id, to_global_id
from domain.lifecycle import CampaignStatus
from domain.stats import Stats
from live.hub import LiveHub, ProgressUpdate
from live.snapshots import own_progress
from schema.broadcast import CURRENT_STREAM, Broadcaster, Member, StreamTarget
from schema.context import Context
from schema.types import CampaignStats
from services.auth import Principal
from services.campaigns import not_found

Info = strawberry.Info[Context, None]


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


def _view(snapshot: ProgressUpdate) -> CampaignProgress:
    if snapshot.view is None:
        event = snapshot.event
        stats = Stats(**event["stats"])
        snapshot.view = CampaignProgress(
            campaign_id=strawberry.ID(to_global_id("Campaign", event["campaign_id"])),
            status=CampaignStatus(event["status"]),
            stats=CampaignStats.of(stats),
            send_rate=round(snapshot.send_rate, 1),
            at=datetime.fromtimestamp(event["at"], UTC),
        )
    return snapshot.view  # type: ignore[return-value]


async def _first_snapshot(hub: LiveHub, principal: Principal, pk: int) -> ProgressUpdate:
    """The campaign's numbers from the database; another workspace's is not found."""
    snapshot = await _own_snapshot(hub, principal.workspace_id, pk)
    if snapshot is None:
        raise not_found(pk)
    return snapshot


async def join_known_group(context: Context, target: StreamTarget) -> tuple[Member, float, str] | None:
    """`campaignProgress` asked exactly as a live group asks it (same document,
    operation name and variables), without strawberry's pipeline: that ask was parsed,
    validated, costed and executed for the group's first member. What depends on the
    caller is checked here as the resolver checks it: a principal whose key may
    subscribe, and the campaign in its workspace (one read shared by the members
    asking together, Group.first). Returns the member, joined and owed every later
    frame, the time of its first snapshot and that snapshot's payload, to be sent by
    the caller; None where the full path must answer (a new ask, or an error, which
    it words as it always does)."""
    broadcaster: Broadcaster | None = getattr(context.request.app.state, "broadcaster", None)
    principal = context.principal
    if broadcaster is None or principal is None:
        return None
    try:
        check("campaignProgress", needed("subscription", "campaignProgress"), principal.scopes)
    except DomainError:
        return None
    joined = broadcaster.join(target)
    if joined is None:
        return None
    member, group = joined
    try:
        own = principal.workspace_id, group.campaign_id
        first = await group.first(own[0], lambda: _own_snapshot(broadcaster.hub, *own))
    except Exception:
        first = None  # the full path reads again and reports the error
    except BaseException:
        member.leave()
        raise
    if first is None:
        member.leave()
        return None
    return member, *first


async def _own_snapshot(hub: LiveHub, workspace_id: int, pk: int) -> ProgressUpdate | None:
    event = await own_progress(workspace_id, pk)
    return None if event is None else hub.snapshot(event)


def _hub(info: Info) -> LiveHub:
    hub: LiveHub | None = getattr(info.context.request.app.state, "hub", None)
    if hub is None:
        raise Conflict("Live updates need Redis (REDIS_URL), which this server does not have.")
    return hub


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The current snapshot first, then one whenever the status or numbers change. "
        "It stays open after a terminal status: receipts keep arriving."
    )
    async def campaign_progress(self, info: Info, id: strawberry.ID) -> AsyncGenerator[CampaignProgress, None]:
        principal = info.context.require(info)
        pk = expect_id(id, "Campaign")
        hub = _hub(info)
        target = CURRENT_STREAM.get()
        broadcaster: Broadcaster | None = getattr(info.context.request.app.state, "broadcaster", None)
        if target is None or broadcaster is None:  # not over our WebSocket handlers: one result at a time
            with hub.watch_campaign(pk) as slot:  # listen first: nothing between read and watch is lost
                yield _view(await _first_snapshot(hub, principal, pk))
                while True:
                    yield _view(await slot.get())
        member = broadcaster.add(pk, target, _view)  # joined first: nothing between read and join is lost
        try:
            first = await _first_snapshot(hub, principal, pk)
        except BaseException:
            member.leave()
            raise
        target.handoff = (member, first.event["at"])  # the handler owns the member from here
        yield _view(first)
        # Not resumed: the protocol handler closes this stream after sending the first
        # result, and the group writes every later snapshot (schema/broadcast.py).
        raise RuntimeError("campaignProgress was resumed after its hand-off")

    @strawberry.subscription(
        description="Status changes of every campaign in the caller's workspace, for list dashboards."
    )
    async def campaign_status_changes(
        self,
        info: Info,
        status: list[CampaignStatus] | None = None,  # type: ignore[valid-type]
    ) -> AsyncGenerator[CampaignStatusChange, None]:
        principal = info.context.require(info)
        wanted = {s.value for s in status or ()}
        with _hub(info).watch_workspace(principal.workspace_id) as slot:
            while True:
                event = await slot.get()
                if wanted and event["to_status"] not in wanted:
                    continue
                yield CampaignStatusChange(
                    campaign_id=strawberry.ID(to_global_id("Campaign", event["campaign_id"])),
                    name=event["name"],
                    from_=CampaignStatus(event["from_status"]) if event["from_status"] else None,
                    to=CampaignStatus(event["to_status"]),
                    reason=event["reason"],
                    at=datetime.fromtimestamp(event["at"], UTC),
                )
