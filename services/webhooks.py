"""Outbound webhook endpoints as a resource of the workspace: list, create (the secret
shown once), update, rotate the secret, delete, send a test event; and the delivery
log. Deliveries themselves are written by services/webhook_outbox.py and POSTed by
jobs/webhooks.py, never by a request: a slow endpoint cannot slow the API."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from domain import webhooks as wh
from domain.errors import LimitExceeded, NotFound, ValidationFailed, collect
from domain.ids import to_global_id
from models import WebhookDelivery, WebhookEndpoint
from services import db, webhook_outbox
from services.auth import Principal

#: endpoints per workspace: each event is one delivery row per endpoint
MAX_ENDPOINTS = 20
#: the delivery log's largest page
MAX_DELIVERIES_PAGE = 100


@dataclass(frozen=True, slots=True)
class EndpointView:
    id: int
    url: str
    events: tuple[wh.EventType, ...]
    enabled: bool
    secret_hint: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: WebhookEndpoint) -> EndpointView:
        hint = row.secret[: len(wh.SECRET_PREFIX) + 4] + "…"
        return cls(row.id, row.url, wh.loaded_events(row.events), row.enabled, hint, row.created_at, row.updated_at)


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: int
    endpoint_id: int
    event_id: str
    event_type: str
    campaign_id: int | None
    body: str
    status: wh.DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, row: WebhookDelivery) -> DeliveryView:
        pending = row.status is wh.DeliveryStatus.PENDING
        return cls(
            row.id,
            row.endpoint_id,
            row.event_id,
            row.event_type,
            row.campaign_id,
            row.body,
            row.status,
            row.attempts,
            row.next_attempt_at if pending else None,
            row.last_attempt_at,
            row.last_status_code,
            row.last_error,
            row.created_at,
            row.delivered_at,
        )


def new_secret() -> str:
    return wh.SECRET_PREFIX + secrets.token_hex(32)


def not_found(field: tuple[str, ...] = ("id",)) -> NotFound:
    return NotFound("No such webhook endpoint.", field)


async def list_endpoints(workspace_id: int) -> list[EndpointView]:
    """The workspace's endpoints, oldest first."""
    return [EndpointView.of(r) for r in await WebhookEndpoint.filter(workspace_id=workspace_id).order_by("id")]


async def _get(workspace_id: int, endpoint_id: int, field: tuple[str, ...] = ("id",)) -> WebhookEndpoint:
    row = await WebhookEndpoint.get_or_none(id=endpoint_id, workspace_id=workspace_id)
    if row is None:
        raise not_found(field)
    return row


def _checked(
    url: str | None, events: Iterable[str] | None, *, allow_private: bool
) -> tuple[str | None, tuple[wh.EventType, ...] | None]:
    """Both inputs checked, every bad one reported."""
    errors: list[ValidationFailed] = []
    clean_url = clean_events = None
    if url is not None:
        try:
            clean_url = wh.check_url(url, allow_private=allow_private)
        except ValidationFailed as error:
            errors.append(error)
    if events is not None:
        try:
            clean_events = wh.parse_events(events)
        except ValidationFailed as error:
            errors.append(error)
    collect(errors)
    return clean_url, clean_events


async def create_endpoint(
    principal: Principal, url: str, events: Iterable[str], *, enabled: bool = True, allow_private: bool = False
) -> tuple[EndpointView, str]:
    """A new endpoint: (its view, its signing secret, shown this once)."""
    clean_url, clean_events = _checked(url, events, allow_private=allow_private)
    assert clean_url is not None and clean_events is not None
    secret = new_secret()
    async with db.in_transaction() as conn:
        # the count and the insert under a lock of the workspace's row (PostgreSQL; SQLite
        # has one writer at a time anyway). Locking the endpoint rows instead is not
        # enough: a concurrent insert is not among the rows locked, and with none yet
        # nothing is. NO KEY UPDATE: inserts elsewhere referencing the workspace
        # (their foreign key takes KEY SHARE) do not wait on it.
        if db.is_postgres(conn):
            await db.fetch_rows(
                conn, "SELECT id FROM workspace WHERE id = ? FOR NO KEY UPDATE", [principal.workspace_id]
            )
        existing = await db.fetch_rows(
            conn, "SELECT id FROM webhook_endpoint WHERE workspace_id = ?", [principal.workspace_id]
        )
        if len(existing) >= MAX_ENDPOINTS:
            raise LimitExceeded(f"A workspace has at most {MAX_ENDPOINTS} webhook endpoints.", ("url",))
        row = await WebhookEndpoint.create(
            using_db=conn,
            workspace_id=principal.workspace_id,
            url=clean_url,
            events=wh.stored_events(clean_events),
            enabled=enabled,
            secret=secret,
        )
    return EndpointView.of(row), secret


async def update_endpoint(
    principal: Principal,
    endpoint_id: int,
    *,
    url: str | None = None,
    events: Iterable[str] | None = None,
    enabled: bool | None = None,
    allow_private: bool = False,
) -> EndpointView:
    """Change what is given, leave the rest. Events recorded before the change keep
    their deliveries; a disabled endpoint gets no new ones and its pending ones wait
    until it is enabled again (they still give up 24 h after their event)."""
    clean_url, clean_events = _checked(url, events, allow_private=allow_private)
    row = await _get(principal.workspace_id, endpoint_id)
    changes: dict[str, object] = {}
    if clean_url is not None:
        changes["url"] = clean_url
    if clean_events is not None:
        changes["events"] = wh.stored_events(clean_events)
    if enabled is not None:
        changes["enabled"] = enabled
    if changes:
        # a queryset update does not apply auto_now: updatedAt is set here
        await WebhookEndpoint.filter(id=row.id).update(**changes, updated_at=webhook_outbox.now_utc())
        row = await _get(principal.workspace_id, endpoint_id)
    return EndpointView.of(row)


async def rotate_secret(principal: Principal, endpoint_id: int) -> tuple[EndpointView, str]:
    """A new signing secret, used from the next attempt on (the old one stops at once)."""
    row = await _get(principal.workspace_id, endpoint_id)
    secret = new_secret()
    await WebhookEndpoint.filter(id=row.id).update(secret=secret, updated_at=webhook_outbox.now_utc())
    return EndpointView.of(await _get(principal.workspace_id, endpoint_id)), secret


async def delete_endpoint(principal: Principal, endpoint_id: int) -> int:
    """Delete an endpoint and its delivery log; returns its id."""
    deleted = await WebhookEndpoint.filter(id=endpoint_id, workspace_id=principal.workspace_id).delete()
    if not deleted:
        raise not_found()
    return endpoint_id


async def send_test(principal: Principal, endpoint_id: int) -> DeliveryView:
    """Queue a `webhook.test` event to the endpoint; the worker POSTs it within a
    second or so, and the delivery log shows the outcome."""
    row = await _get(principal.workspace_id, endpoint_id, ("endpointId",))
    return DeliveryView.of(await webhook_outbox.record_test(row.id, principal.workspace_id))


async def list_deliveries(
    workspace_id: int,
    endpoint_id: int,
    *,
    first: int = 20,
    status: wh.DeliveryStatus | None = None,
    campaign_id: int | None = None,
) -> list[DeliveryView]:
    """The endpoint's deliveries, newest first."""
    if not 0 <= first <= MAX_DELIVERIES_PAGE:
        raise ValidationFailed(f"first is 0 to {MAX_DELIVERIES_PAGE}.", ("first",))
    query = WebhookDelivery.filter(endpoint_id=endpoint_id, endpoint__workspace_id=workspace_id)
    if status is not None:
        query = query.filter(status=status)
    if campaign_id is not None:
        query = query.filter(campaign_id=campaign_id)
    return [DeliveryView.of(r) for r in await query.order_by("-id").limit(first)]


def campaign_global_id(campaign_id: int | None) -> str | None:
    return to_global_id("Campaign", campaign_id) if campaign_id is not None else None
