"""Queries of the contract. Every read is scoped to the caller's workspace."""

from __future__ import annotations

import strawberry

import models
from domain.access import Scope
from domain.errors import NotFound
from domain.ids import parse_global_id, to_global_id
from schema.context import Context
from schema.keys import ApiKey
from schema.optouts import OptOut
from schema.recurring import schedule_node
from schema.types import (
    Campaign,
    CampaignConnection,
    CampaignStatus,
    Message,
    Node,
    Workspace,
    asks_for,
    page_window,
)
from schema.webhooks import WebhookEndpoint
from services import keys as key_service
from services import optouts as optout_service
from services import reads
from services import webhooks as webhook_service
from services.auth import Principal
from services.campaigns import get_campaign

Info = strawberry.Info[Context, None]


async def _workspace(info: Info) -> Workspace:
    principal = info.context.require(info)
    workspace = await models.Workspace.get(id=principal.workspace_id)
    return Workspace(id=strawberry.ID(to_global_id("Workspace", workspace.id)), name=workspace.name)


async def _campaign(principal: Principal, pk: int) -> Campaign | None:
    try:
        return Campaign.of(await get_campaign(principal, pk))
    except NotFound:
        return None


@strawberry.type
class Query:
    @strawberry.field
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        principal = info.context.require(info)
        parsed = parse_global_id(id)
        if parsed is None:
            return None
        kind, pk = parsed
        if kind == "Campaign":
            return await _campaign(principal, pk)
        if kind == "Message":
            message = await models.Message.get_or_none(id=pk, campaign__workspace_id=principal.workspace_id)
            return Message.of(message) if message else None
        if kind == "TestMessage":
            test = await models.TestMessage.get_or_none(id=pk, campaign__workspace_id=principal.workspace_id)
            return Message.of(test) if test else None
        if kind == "Workspace" and pk == principal.workspace_id:
            return await _workspace(info)
        if kind == "ApiKey" and Scope.ADMIN in principal.scopes:  # as apiKeys: admin only
            key = await key_service.get_key(principal.workspace_id, pk)
            return ApiKey.of(key) if key else None
        if kind == "WebhookEndpoint" and Scope.ADMIN in principal.scopes:  # as webhookEndpoints
            found = [e for e in await webhook_service.list_endpoints(principal.workspace_id) if e.id == pk]
            return WebhookEndpoint.of(found[0], principal.workspace_id) if found else None
        if kind == "RecurringSchedule":
            return await schedule_node(principal, id)
        if kind == "OptOut":
            row = await optout_service.get_opt_out(principal.workspace_id, pk)
            return OptOut.of(row) if row else None
        return None

    @strawberry.field
    async def viewer(self, info: Info) -> Workspace:
        return await _workspace(info)

    @strawberry.field
    async def campaign(self, info: Info, id: strawberry.ID) -> Campaign | None:
        parsed = parse_global_id(id)
        if parsed is None or parsed[0] != "Campaign":
            return None
        return await _campaign(info.context.require(info), parsed[1])

    @strawberry.field(
        description=(
            f"Newest first. first/after page forward, last/before backward; at most {reads.MAX_PAGE} a page, "
            f"first is {reads.CAMPAIGNS_PAGE} unless last is given."
        )
    )
    async def campaigns(
        self,
        info: Info,
        first: int | None = reads.CAMPAIGNS_PAGE,
        after: str | None = None,
        status: list[CampaignStatus] | None = None,  # type: ignore[valid-type]
        search: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> CampaignConnection:
        principal = info.context.require(info)
        window = page_window(info, first, after, last, before, reads.CAMPAIGNS_PAGE)
        counted = asks_for(info, "totalCount")  # read with the page: one query, not two
        return CampaignConnection.of(await reads.list_campaigns(principal, window, status, search, counted))
