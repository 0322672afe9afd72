"""Outbound webhooks in GraphQL: endpoints, their delivery log, and the mutations that
manage them. Everything here needs the `admin` scope (domain/access.py)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain import webhooks as wh
from domain.errors import DomainError
from domain.ids import expect_id, to_global_id
from schema.context import Context
from schema.errors import UserError
from schema.types import Node
from services import webhooks as service

Info = strawberry.Info[Context, None]


WebhookEventType = strawberry.enum(
    wh.EventType,
    name="WebhookEventType",
    description="What an endpoint can subscribe to; WEBHOOK_TEST only comes from sendTestWebhook.",
)
WebhookDeliveryStatus = strawberry.enum(
    wh.DeliveryStatus,
    name="WebhookDeliveryStatus",
    description="PENDING: not yet answered with a 2xx (retried with backoff); DELIVERED; FAILED: gave up.",
)


@strawberry.type(description="One event for one endpoint, with what its attempts got.")
class WebhookDelivery(Node):
    event_id: str = strawberry.field(
        description="The same at every attempt and for every endpoint: de-duplicate on it."
    )
    event_type: WebhookEventType  # type: ignore[valid-type]
    campaign_id: strawberry.ID | None
    status: WebhookDeliveryStatus  # type: ignore[valid-type]
    attempts: int
    last_status_code: int | None = strawberry.field(description="The receiver's last HTTP status; null if none came.")
    last_error: str | None = strawberry.field(
        description="Why the last attempt failed: a timeout, a refusal, the answer."
    )
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = strawberry.field(description="When it is tried again (PENDING only).")
    created_at: datetime
    delivered_at: datetime | None
    payload: str = strawberry.field(description="The exact JSON body POSTed and signed.")

    @classmethod
    def of(cls, d: service.DeliveryView) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(to_global_id("WebhookDelivery", d.id)),
            event_id=d.event_id,
            event_type=wh.EventType(d.event_type),
            campaign_id=strawberry.ID(to_global_id("Campaign", d.campaign_id)) if d.campaign_id else None,
            status=d.status,
            attempts=d.attempts,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            last_attempt_at=d.last_attempt_at,
            next_attempt_at=d.next_attempt_at,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
            payload=d.body,
        )


@strawberry.type(description="Where the workspace's events are POSTed. Its secret is shown once, on creation.")
class WebhookEndpoint(Node):
    url: str
    events: list[WebhookEventType]  # type: ignore[valid-type]
    enabled: bool
    secret_hint: str = strawberry.field(description="The secret's first characters, to recognise it.")
    created_at: datetime
    updated_at: datetime
    workspace_id: strawberry.Private[int]
    pk: strawberry.Private[int]

    @strawberry.field(description="Deliveries, newest first (at most 100 per call).")
    async def deliveries(
        self,
        first: int = 20,
        status: WebhookDeliveryStatus | None = None,  # type: ignore[valid-type]
        campaign_id: strawberry.ID | None = None,
    ) -> list[WebhookDelivery]:
        campaign = expect_id(campaign_id, "Campaign", ("campaignId",)) if campaign_id is not None else None
        views = await service.list_deliveries(
            self.workspace_id, self.pk, first=first, status=status, campaign_id=campaign
        )
        return [WebhookDelivery.of(v) for v in views]

    @classmethod
    def of(cls, e: service.EndpointView, workspace_id: int) -> WebhookEndpoint:
        return cls(
            id=strawberry.ID(to_global_id("WebhookEndpoint", e.id)),
            url=e.url,
            events=list(e.events),
            enabled=e.enabled,
            secret_hint=e.secret_hint,
            created_at=e.created_at,
            updated_at=e.updated_at,
            workspace_id=workspace_id,
            pk=e.id,
        )


@strawberry.input
class CreateWebhookEndpointInput:
    url: str = strawberry.field(description="https:// (or http://) on a public address.")
    events: list[WebhookEventType]  # type: ignore[valid-type]
    enabled: bool = True


@strawberry.input(description="Omitted fields stay as they are.")
class UpdateWebhookEndpointInput:
    id: strawberry.ID
    url: str | None = strawberry.UNSET
    events: list[WebhookEventType] | None = strawberry.UNSET  # type: ignore[valid-type]
    enabled: bool | None = strawberry.UNSET


@strawberry.type
class WebhookEndpointPayload:
    endpoint: WebhookEndpoint | None
    user_errors: list[UserError]


@strawberry.type
class WebhookSecretPayload:
    endpoint: WebhookEndpoint | None
    secret: str | None = strawberry.field(description="The signing secret: shown this once.")
    user_errors: list[UserError]


@strawberry.type
class DeleteWebhookEndpointPayload:
    deleted_id: strawberry.ID | None
    user_errors: list[UserError]


@strawberry.type
class SendTestWebhookPayload:
    delivery: WebhookDelivery | None = strawberry.field(description="PENDING until a worker POSTs it, within a second.")
    user_errors: list[UserError]


def _given(value: object) -> bool:
    return value is not strawberry.UNSET and value is not None


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="The workspace's webhook endpoints, oldest first (admin).")
    async def webhook_endpoints(self, info: Info) -> list[WebhookEndpoint]:
        principal = info.context.require(info)
        return [
            WebhookEndpoint.of(e, principal.workspace_id) for e in await service.list_endpoints(principal.workspace_id)
        ]


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(description="A new endpoint (admin); its signing secret is in the payload once.")
    async def create_webhook_endpoint(self, info: Info, input: CreateWebhookEndpointInput) -> WebhookSecretPayload:
        try:
            principal = info.context.require(info)
            view, secret = await service.create_endpoint(
                principal,
                input.url,
                [str(e) for e in input.events],
                enabled=input.enabled,
                allow_private=info.context.allow_private_webhooks,
            )
        except DomainError as error:
            return WebhookSecretPayload(endpoint=None, secret=None, user_errors=_errors(error))
        return WebhookSecretPayload(
            endpoint=WebhookEndpoint.of(view, principal.workspace_id), secret=secret, user_errors=[]
        )

    @strawberry.mutation(description="Change an endpoint's url, events or enabled flag (admin).")
    async def update_webhook_endpoint(self, info: Info, input: UpdateWebhookEndpointInput) -> WebhookEndpointPayload:
        try:
            principal = info.context.require(info)
            view = await service.update_endpoint(
                principal,
                expect_id(input.id, "WebhookEndpoint", ("input", "id")),
                url=input.url if _given(input.url) else None,
                events=[str(e) for e in input.events] if _given(input.events) else None,  # type: ignore[union-attr]
                enabled=input.enabled if _given(input.enabled) else None,
                allow_private=info.context.allow_private_webhooks,
            )
        except DomainError as error:
            return WebhookEndpointPayload(endpoint=None, user_errors=_errors(error))
        return WebhookEndpointPayload(endpoint=WebhookEndpoint.of(view, principal.workspace_id), user_errors=[])

    @strawberry.mutation(description="A new signing secret (admin), used from the next attempt on; shown once.")
    async def rotate_webhook_secret(self, info: Info, id: strawberry.ID) -> WebhookSecretPayload:
        try:
            principal = info.context.require(info)
            view, secret = await service.rotate_secret(principal, expect_id(id, "WebhookEndpoint"))
        except DomainError as error:
            return WebhookSecretPayload(endpoint=None, secret=None, user_errors=UserError.all(error))
        return WebhookSecretPayload(
            endpoint=WebhookEndpoint.of(view, principal.workspace_id), secret=secret, user_errors=[]
        )

    @strawberry.mutation(description="Delete an endpoint and its delivery log (admin).")
    async def delete_webhook_endpoint(self, info: Info, id: strawberry.ID) -> DeleteWebhookEndpointPayload:
        try:
            principal = info.context.require(info)
            await service.delete_endpoint(principal, expect_id(id, "WebhookEndpoint"))
        except DomainError as error:
            return DeleteWebhookEndpointPayload(deleted_id=None, user_errors=UserError.all(error))
        return DeleteWebhookEndpointPayload(deleted_id=id, user_errors=[])

    @strawberry.mutation(description="Queue a signed `webhook.test` event to the endpoint (admin).")
    async def send_test_webhook(self, info: Info, endpoint_id: strawberry.ID) -> SendTestWebhookPayload:
        try:
            principal = info.context.require(info)
            view = await service.send_test(principal, expect_id(endpoint_id, "WebhookEndpoint", ("endpointId",)))
        except DomainError as error:
            return SendTestWebhookPayload(delivery=None, user_errors=UserError.all(error))
        return SendTestWebhookPayload(delivery=WebhookDelivery.of(view), user_errors=[])


def _errors(error: DomainError) -> list[UserError]:
    """Input fields are under `input` in the mutation's arguments."""
    return UserError.all(error, rename={"url": ["input", "url"], "events": ["input", "events"]})
