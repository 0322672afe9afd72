"""Mutations: parse ids, call a service, turn domain errors into `userErrors`.

On INVALID_TRANSITION the payload also carries the campaign as it is now, so a client
can re-render its buttons from `allowedActions`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

import models
from domain.campaign_input import validate_reason
from domain.delivery import parse_clock, parse_day
from domain.errors import DomainError, InvalidTransition
from domain.ids import expect_id, to_global_id
from domain.lease import StopConfirmation
from domain.lifecycle import Action
from schema.context import Context
from schema.delivery import SendWindowInput
from schema.errors import UserError
from schema.types import Campaign, Channel, Message
from services import campaigns as campaign_service
from services import recipients as recipient_service
from services.auth import Principal
from services.test_messages import send_test_message
from services.transitions import Applied, apply_action

Info = strawberry.Info[Context, None]


@strawberry.type(
    description="On INVALID_TRANSITION, campaign holds the campaign as it is now, so a client can re-render."
)
class CampaignPayload:
    campaign: Campaign | None
    user_errors: list[UserError]
    worker_acknowledged: bool | None = strawberry.field(
        default=None,
        description=(
            "pauseCampaign and cancelCampaign of a campaign a worker was sending: true when that worker "
            "confirmed it starts no new provider call; false when none answered in time, and the mutation "
            "waited out the worker's lease proof instead (no new call starts either way once it returns). "
            "Null when no worker was sending, and for other mutations."
        ),
    )


@strawberry.type
class DeleteCampaignPayload:
    deleted_id: strawberry.ID | None
    user_errors: list[UserError]


@strawberry.type
class InvalidRecipient:
    index: int
    phone: str
    reason: str


@strawberry.type
class AddRecipientsPayload:
    campaign: Campaign | None
    added: int
    duplicates: int
    opted_out: int
    invalid: list[InvalidRecipient]
    user_errors: list[UserError]


@strawberry.type
class TestMessagePayload:
    message: Message | None
    user_errors: list[UserError]


@strawberry.input
class CreateCampaignInput:
    name: str
    body: str
    channel: Channel | None = Channel.WHATSAPP  # type: ignore[valid-type]
    template_name: str | None = None
    template_language: str | None = None
    send_rate: int | None = None
    failure_threshold: float | None = 0.05
    failure_sample_size: int | None = 100
    sender_id: strawberry.ID | None = strawberry.field(
        default=None, description="The sender it sends from; omitted: the workspace's default sender."
    )
    time_zone: str | None = strawberry.field(
        default=None, description="IANA zone of recipients whose own is unknown; null: UTC."
    )
    send_window: SendWindowInput | None = strawberry.field(
        default=None, description="When messages may start; null: at any hour."
    )


@strawberry.input(description="Only in DRAFT. Omitted fields stay as they are.")
class UpdateCampaignInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    body: str | None = strawberry.UNSET
    template_name: str | None = strawberry.UNSET
    template_language: str | None = strawberry.UNSET
    send_rate: int | None = strawberry.UNSET
    failure_threshold: float | None = strawberry.UNSET
    failure_sample_size: int | None = strawberry.UNSET
    sender_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Another sender of the workspace (null: the default one)."
    )
    time_zone: str | None = strawberry.UNSET
    send_window: SendWindowInput | None = strawberry.field(
        default=strawberry.UNSET, description="null removes the window."
    )


@strawberry.input
class RecipientInput:
    phone: str
    variables: JSON | None = None


@strawberry.input(description="At most 10,000 recipients a call; bulk files go through the CSV import.")
class AddRecipientsInput:
    campaign_id: strawberry.ID
    recipients: list[RecipientInput]


@strawberry.input
class RemoveRecipientsInput:
    campaign_id: strawberry.ID
    phones: list[str]


_CAMEL = {
    "name": "name",
    "body": "body",
    "template_name": "templateName",
    "template_language": "templateLanguage",
    "send_rate": "sendRate",
    "failure_threshold": "failureThreshold",
    "failure_sample_size": "failureSampleSize",
    "time_zone": "timeZone",
    "send_window": "sendWindow",
}


def _sender_pk(gid: str | None) -> int | None:
    return expect_id(gid, "Sender", ("input", "senderId")) if gid is not None else None


def _given(data: Any) -> dict[str, Any]:
    given = {
        camel: getattr(data, attr) for attr, camel in _CAMEL.items() if getattr(data, attr) is not strawberry.UNSET
    }
    if isinstance(window := given.get("sendWindow"), SendWindowInput):
        given["sendWindow"] = window.given()
    return given


_ACKNOWLEDGED = {StopConfirmation.ACKNOWLEDGED: True, StopConfirmation.LEASE_PROOF: False}


async def _campaign_op(
    info: Info,
    gid: str,
    op: Callable[[Principal, int], Awaitable[models.Campaign | Applied]],
    rename: dict[str, list[str]] | None = None,
) -> CampaignPayload:
    pk = 0
    try:
        principal = info.context.require(info)
        pk = expect_id(gid, "Campaign")
        done = await op(principal, pk)
        if isinstance(done, Applied):
            acknowledged = _ACKNOWLEDGED.get(done.stop) if done.stop is not None else None
            return CampaignPayload(
                campaign=Campaign.of(done.campaign), user_errors=[], worker_acknowledged=acknowledged
            )
        return CampaignPayload(campaign=Campaign.of(done), user_errors=[])
    except DomainError as error:
        current = None
        if isinstance(error, InvalidTransition):
            current = Campaign.of(await campaign_service.get_campaign(principal, pk))
        return CampaignPayload(campaign=current, user_errors=UserError.all(error, rename))


def _transition(
    info: Info,
    action: Action,
    *,
    reason: str | None = None,
    scheduled_at: datetime | None = None,
    local_time: tuple[str, str] | None = None,
) -> Callable[[Principal, int], Awaitable[Applied]]:
    async def op(principal: Principal, pk: int) -> Applied:
        day_time = None
        if local_time is not None:
            day_time = (parse_day(local_time[0], ("date",)), parse_clock(local_time[1], ("time",)))
        return await apply_action(
            principal,
            pk,
            action,
            reason=reason,
            scheduled_at=scheduled_at,
            local_time=day_time,
            after=info.context.after_transition,
        )

    return op


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_campaign(self, info: Info, input: CreateCampaignInput) -> CampaignPayload:
        try:
            principal = info.context.require(info)
            sender = _sender_pk(input.sender_id)
            campaign = await campaign_service.create_campaign(principal, _given(input), sender_id=sender)
        except DomainError as error:
            return CampaignPayload(campaign=None, user_errors=UserError.all(error))
        return CampaignPayload(campaign=Campaign.of(campaign), user_errors=[])

    @strawberry.mutation
    async def update_campaign(self, info: Info, input: UpdateCampaignInput) -> CampaignPayload:
        given = _given(input)

        async def op(principal: Principal, pk: int) -> models.Campaign:
            if input.sender_id is strawberry.UNSET:
                return await campaign_service.update_campaign(principal, pk, given)
            sender = _sender_pk(input.sender_id)
            return await campaign_service.update_campaign(principal, pk, given, sender_id=sender, set_sender=True)

        return await _campaign_op(info, input.id, op, {"id": ["input", "id"]})

    @strawberry.mutation
    async def delete_campaign(self, info: Info, id: strawberry.ID) -> DeleteCampaignPayload:
        try:
            principal = info.context.require(info)
            pk = expect_id(id, "Campaign")
            await campaign_service.delete_campaign(principal, pk)
        except DomainError as error:
            return DeleteCampaignPayload(deleted_id=None, user_errors=UserError.all(error))
        return DeleteCampaignPayload(deleted_id=strawberry.ID(to_global_id("Campaign", pk)), user_errors=[])

    @strawberry.mutation
    async def add_recipients(self, info: Info, input: AddRecipientsInput) -> AddRecipientsPayload:
        rename = {"id": ["input", "campaignId"]}
        try:
            principal = info.context.require(info)
            pk = expect_id(input.campaign_id, "Campaign")
            report = await recipient_service.add_recipients(
                principal, pk, [(r.phone, r.variables) for r in input.recipients]
            )
            campaign = await campaign_service.get_campaign(principal, pk)
        except DomainError as error:
            current = None
            if isinstance(error, InvalidTransition):
                current = Campaign.of(await campaign_service.get_campaign(principal, pk))
            return AddRecipientsPayload(
                campaign=current,
                added=0,
                duplicates=0,
                opted_out=0,
                invalid=[],
                user_errors=UserError.all(error, rename),
            )
        return AddRecipientsPayload(
            campaign=Campaign.of(campaign),
            added=report.added,
            duplicates=report.duplicates,
            opted_out=report.opted_out,
            invalid=[InvalidRecipient(index=r.index, phone=r.phone, reason=r.reason) for r in report.invalid],
            user_errors=[],
        )

    @strawberry.mutation
    async def remove_recipients(self, info: Info, input: RemoveRecipientsInput) -> CampaignPayload:
        async def op(principal: Principal, pk: int) -> models.Campaign:
            return await recipient_service.remove_recipients(principal, pk, input.phones)

        return await _campaign_op(info, input.campaign_id, op, {"id": ["input", "campaignId"]})

    @strawberry.mutation(description="DRAFT → SCHEDULED; scheduledAt must be in the future")
    async def schedule_campaign(self, info: Info, id: strawberry.ID, scheduled_at: datetime) -> CampaignPayload:
        return await _campaign_op(info, id, _transition(info, Action.SCHEDULE, scheduled_at=scheduled_at))

    @strawberry.mutation(description="SCHEDULED → SCHEDULED at a new time")
    async def reschedule_campaign(self, info: Info, id: strawberry.ID, scheduled_at: datetime) -> CampaignPayload:
        return await _campaign_op(info, id, _transition(info, Action.RESCHEDULE, scheduled_at=scheduled_at))

    @strawberry.mutation(
        description=(
            "DRAFT → SCHEDULED to send at `time` (HH:MM) on `date` (YYYY-MM-DD) in each recipient's time zone; it "
            "starts at the earliest. Zones where that time has already passed get it the next day; refused when it "
            "has passed everywhere."
        )
    )
    async def schedule_campaign_in_local_time(
        self, info: Info, id: strawberry.ID, date: str, time: str
    ) -> CampaignPayload:
        return await _campaign_op(info, id, _transition(info, Action.SCHEDULE, local_time=(date, time)))

    @strawberry.mutation(
        description="SCHEDULED → SCHEDULED at a new local date and time (see scheduleCampaignInLocalTime)."
    )
    async def reschedule_campaign_in_local_time(
        self, info: Info, id: strawberry.ID, date: str, time: str
    ) -> CampaignPayload:
        return await _campaign_op(info, id, _transition(info, Action.RESCHEDULE, local_time=(date, time)))

    @strawberry.mutation(description="SCHEDULED → DRAFT")
    async def unschedule_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        return await _campaign_op(info, id, _transition(info, Action.UNSCHEDULE))

    @strawberry.mutation(description="DRAFT → QUEUED")
    async def send_campaign_now(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        return await _campaign_op(info, id, _transition(info, Action.SEND_NOW))

    @strawberry.mutation(description="QUEUED | PROCESSING → PAUSED; no new send starts once this returns")
    async def pause_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        return await _campaign_op(info, id, _transition(info, Action.PAUSE))

    @strawberry.mutation(description="PAUSED → QUEUED; continues with the recipients not yet processed")
    async def resume_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        return await _campaign_op(info, id, _transition(info, Action.RESUME))

    @strawberry.mutation(description="any non-terminal → CANCELLED")
    async def cancel_campaign(self, info: Info, id: strawberry.ID, reason: str | None = None) -> CampaignPayload:
        try:
            validate_reason(reason)
        except DomainError as error:
            return CampaignPayload(campaign=None, user_errors=UserError.all(error))
        return await _campaign_op(info, id, _transition(info, Action.CANCEL, reason=reason))

    @strawberry.mutation(description="COMPLETED → QUEUED; failed messages go back to PENDING")
    async def retry_failed_messages(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        return await _campaign_op(info, id, _transition(info, Action.RETRY_FAILED))

    @strawberry.mutation(description="FAILED → QUEUED")
    async def retry_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        return await _campaign_op(info, id, _transition(info, Action.RETRY))

    @strawberry.mutation(description="any → a new DRAFT with the same content and recipients")
    async def duplicate_campaign(self, info: Info, id: strawberry.ID, name: str | None = None) -> CampaignPayload:
        async def op(principal: Principal, pk: int) -> models.Campaign:
            return await campaign_service.duplicate_campaign(principal, pk, name)

        return await _campaign_op(info, id, op)

    @strawberry.mutation(description="sends the rendered message to one phone now, outside the campaign's numbers")
    async def send_test_message(
        self, info: Info, id: strawberry.ID, phone: str, variables: JSON | None = None
    ) -> TestMessagePayload:
        try:
            principal = info.context.require(info)
            pk = expect_id(id, "Campaign")
            provider = info.context.request.app.state.provider
            sent = await send_test_message(principal, pk, phone, variables, provider)
        except DomainError as error:
            return TestMessagePayload(message=None, user_errors=UserError.all(error, {"id": ["id"]}))
        return TestMessagePayload(message=Message.of(sent), user_errors=[])
