"""Create, edit, delete and duplicate campaigns.

Every write is gated by a conditional statement on (id, workspace, status[, version]),
so the lifecycle table holds under races: an edit racing a SCHEDULE either lands while
the campaign is still DRAFT or is refused, never applied to a scheduled campaign.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from domain import lifecycle
from domain.campaign_input import MAX_NAME, storable, validate_fields
from domain.errors import Conflict, DomainError, NotFound, ValidationFailed
from domain.ids import to_global_id
from domain.lifecycle import Action, CampaignStatus, ScheduleStatus
from models import Campaign, CampaignEvent, RecurringSchedule
from services import counters, db, senders, webhook_outbox
from services.auth import Principal


def now_utc() -> datetime:
    return datetime.now(UTC)


async def get_campaign(principal: Principal, pk: int, field: tuple[str, ...] = ("id",)) -> Campaign:
    """The caller's campaign; another workspace's is NOT_FOUND exactly like a missing one."""
    campaign = await Campaign.get_or_none(id=pk, workspace_id=principal.workspace_id)
    if campaign is None:
        raise not_found(pk, field)
    return campaign


def not_found(pk: int, field: tuple[str, ...] = ("id",)) -> NotFound:
    return NotFound(f"No campaign with id {to_global_id('Campaign', pk)!r}.", field)


async def refusal(principal: Principal, pk: int, action: Action) -> DomainError:
    """Why a gated write matched no row: the campaign is gone, or its status forbids it."""
    campaign = await get_campaign(principal, pk)
    try:
        lifecycle.transition(campaign.status, action)
    except DomainError as exc:
        return exc
    return Conflict("The campaign changed while this request ran; try again.", ("id",))


async def _record_creation(conn: BaseDBAsyncClient, campaign: Campaign, actor: str, reason: str | None = None) -> None:
    """The first event of every history: from nothing to DRAFT (told to webhooks too)."""
    event = await CampaignEvent.create(
        using_db=conn,
        campaign_id=campaign.id,
        from_status=None,
        to_status=CampaignStatus.DRAFT,
        action="CREATE",
        actor=actor,
        reason=reason,
    )
    change = webhook_outbox.Change(
        campaign.id, campaign.workspace_id, campaign.name, None, CampaignStatus.DRAFT, "CREATE", actor, reason, event.at
    )
    await webhook_outbox.record_change(conn, change)


async def create_campaign(principal: Principal, given: dict[str, Any], *, sender_id: int | None = None) -> Campaign:
    """A DRAFT campaign sending from `sender_id` (None: the workspace's default sender)."""
    fields = validate_fields(given, creating=True)
    sender = await senders.pick_sender(principal, sender_id, ("input", "senderId"))
    async with db.in_transaction() as conn:
        campaign = await Campaign.create(
            using_db=conn, workspace_id=principal.workspace_id, sender_id=sender, **fields.values
        )
        await _record_creation(conn, campaign, principal.actor)
    return campaign


async def update_campaign(
    principal: Principal, pk: int, given: dict[str, Any], *, sender_id: int | None = None, set_sender: bool = False
) -> Campaign:
    """EDIT: only in DRAFT; omitted fields stay as they are (`set_sender`: the sender
    too, None meaning the workspace's default)."""
    fields = validate_fields(given, creating=False)
    if set_sender:
        fields.values["sender_id"] = await senders.pick_sender(principal, sender_id, ("input", "senderId"))
    campaign = await get_campaign(principal, pk)
    lifecycle.transition(campaign.status, Action.EDIT)
    merged_template = fields.values.get("template_name", campaign.template_name)
    merged_language = fields.values.get("template_language", campaign.template_language)
    if merged_template and not merged_language:
        raise ValidationFailed("templateLanguage is required with templateName.", ("input", "templateLanguage"))
    if not fields.values:
        return campaign
    updated = await Campaign.filter(
        id=pk,
        workspace_id=principal.workspace_id,
        status__in=lifecycle.sources_of(Action.EDIT),
        version=campaign.version,
    ).update(**fields.values, version=F("version") + 1, updated_at=now_utc())
    if not updated:
        raise await refusal(principal, pk, Action.EDIT)
    return await get_campaign(principal, pk)


async def delete_campaign(principal: Principal, pk: int) -> None:
    """DELETE: only in DRAFT, and not while it is the model of a live recurring
    schedule; messages, events and an ENDED schedule go with it (ON DELETE CASCADE)."""
    lifecycle.check_model_action(Action.DELETE, await live_schedule_of(principal.workspace_id, pk))
    deleted = await Campaign.filter(
        id=pk, workspace_id=principal.workspace_id, status__in=lifecycle.sources_of(Action.DELETE)
    ).delete()
    if not deleted:
        raise await refusal(principal, pk, Action.DELETE)


async def live_schedule_of(workspace_id: int, pk: int) -> ScheduleStatus | None:
    """The status of the live recurring schedule the campaign is the model of, if any
    (its guards: domain/lifecycle.check_model_action)."""
    live = lifecycle.LIVE_SCHEDULE
    found = await RecurringSchedule.filter(workspace_id=workspace_id, campaign_id=pk, status__in=live).first()
    return found.status if found is not None else None


async def duplicate_campaign(principal: Principal, pk: int, name: str | None) -> Campaign:
    """A new DRAFT with the same content and recipients (minus phones opted out since)."""
    source = await get_campaign(principal, pk)
    lifecycle.transition(source.status, Action.DUPLICATE)
    if name is not None:
        name = name.strip()
        if not name or len(name) > MAX_NAME:
            raise ValidationFailed(f"name is 1 to {MAX_NAME} characters.", ("name",))
        if not storable(name):
            raise ValidationFailed("name contains an invalid character (a lone UTF-16 surrogate).", ("name",))
    else:
        name = f"{source.name[: MAX_NAME - 7]} (copy)"
    async with db.in_transaction() as conn:
        copy = await copy_campaign(
            conn, source, name, principal.actor, f"duplicate of {to_global_id('Campaign', source.id)}"
        )
    return await get_campaign(principal, copy.id)


async def copy_campaign(conn: BaseDBAsyncClient, source: Campaign, name: str, actor: str, note: str) -> Campaign:
    """A new DRAFT in `source`'s workspace with its content, delivery settings and
    recipients (minus phones opted out since), written in the caller's transaction with
    its creation event (`note` says where it came from). DUPLICATE and each occurrence of
    a recurring schedule make their campaigns here."""
    copy = await Campaign.create(
        using_db=conn,
        workspace_id=source.workspace_id,
        name=name,
        channel=source.channel,
        body=source.body,
        template_name=source.template_name,
        template_language=source.template_language,
        sender_id=await senders.live_or_default(source.workspace_id, source.sender_id),
        send_rate=source.send_rate,
        failure_threshold=source.failure_threshold,
        failure_sample_size=source.failure_sample_size,
        time_zone=source.time_zone,
        send_window=source.send_window,
    )
    copied = await db.execute(
        conn,
        "INSERT INTO message (campaign_id, phone, variables, time_zone, status, attempts) "
        "SELECT ?, m.phone, m.variables, m.time_zone, 'PENDING', 0 FROM message m "
        "WHERE m.campaign_id = ? AND NOT EXISTS (SELECT 1 FROM opt_out o "
        "WHERE o.workspace_id = ? AND o.phone = m.phone) ORDER BY m.id",
        [copy.id, source.id, source.workspace_id],
    )
    await counters.move(conn, copy.id, total=copied, pending=copied)
    await _record_creation(conn, copy, actor, note)
    return copy
