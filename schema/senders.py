"""Sender accounts in GraphQL: `senders`, `connectSender` (checked with the Cloud API),
`updateSender`, `disconnectSender`. Reading needs `read`; the mutations `admin`
(domain/access.py). No field ever carries an access token."""

from __future__ import annotations

import contextlib
from datetime import datetime

import strawberry

from domain.errors import DomainError
from domain.ids import expect_id, to_global_id
from domain.senders import DailyLimit, Tier
from schema.context import Context
from schema.errors import UserError
from schema.types import Node
from services import daily_limit, templates
from services import senders as service

Info = strawberry.Info[Context, None]

MessagingTier = strawberry.enum(
    Tier, name="MessagingTier", description="Unique users a sender may message per moving 24 hours."
)


@strawberry.type(
    name="DailyLimit",
    description="A sender's messaging limit: the unique recipients it may message per moving 24 hours, shared by "
    "every campaign sending from it (README: The daily messaging limit).",
)
class DailyLimitView:
    tier: MessagingTier  # type: ignore[valid-type]
    limit: int | None = strawberry.field(description="Unique recipients per moving 24 hours; null: unlimited.")
    used: int = strawberry.field(
        description="Recipients counted now: each from the latest claim of a message to them, for 24 hours and "
        "five minutes (a margin over Meta's count). Counted only while the tier is limited."
    )
    remaining: int | None = strawberry.field(description="New recipients that may be messaged now; null: unlimited.")
    resets_at: datetime | None = strawberry.field(
        description="When the recipient counted longest stops counting (a slot frees); null when nobody counts."
    )

    @classmethod
    def of(cls, usage: daily_limit.DailyUsage) -> DailyLimitView:
        room = None if usage.limit is None else max(0, usage.limit - usage.used)
        return cls(tier=usage.tier, limit=usage.limit, used=usage.used, remaining=room, resets_at=usage.resets_at)


@strawberry.type(description="A WhatsApp business phone number the workspace sends from. Its token is never shown.")
class Sender(Node):
    name: str
    waba_id: str = strawberry.field(description="The WhatsApp Business Account it belongs to.")
    phone_number_id: str
    display_phone_number: str
    verified_name: str | None
    throughput: int = strawberry.field(description="Messages per second, shared by every campaign sending from it.")
    messaging_tier: MessagingTier  # type: ignore[valid-type]
    is_default: bool
    created_at: datetime
    checked_at: datetime | None = strawberry.field(description="When the Cloud API last confirmed it and its token.")

    @strawberry.field(description="Its messaging limit now: how much of it the last 24 hours used.")
    async def daily_limit(self) -> DailyLimitView:
        return DailyLimitView.of(await daily_limit.usage(DailyLimit(self.phone_number_id, self.messaging_tier)))

    @classmethod
    def of(cls, s: service.SenderView) -> Sender:
        return cls(
            id=strawberry.ID(to_global_id("Sender", s.id)),
            name=s.name,
            waba_id=s.waba_id,
            phone_number_id=s.phone_number_id,
            display_phone_number=s.display_phone_number,
            verified_name=s.verified_name,
            throughput=s.throughput,
            messaging_tier=s.messaging_tier,
            is_default=s.is_default,
            created_at=s.created_at,
            checked_at=s.checked_at,
        )


@strawberry.input
class ConnectSenderInput:
    name: str
    waba_id: str
    phone_number_id: str
    access_token: str = strawberry.field(description="A system user token that may send from the number.")
    throughput: int | None = strawberry.field(default=None, description="Omitted: what the Cloud API reports.")
    make_default: bool = False


@strawberry.input(description="Omitted fields stay as they are; a new token is checked first.")
class UpdateSenderInput:
    id: strawberry.ID
    name: str | None = None
    access_token: str | None = None
    throughput: int | None = None
    make_default: bool | None = None


@strawberry.type
class SenderPayload:
    sender: Sender | None
    user_errors: list[UserError]


@strawberry.type
class DisconnectSenderPayload:
    disconnected_id: strawberry.ID | None
    user_errors: list[UserError]


_INPUT = {
    key: ["input", key] for key in ("name", "wabaId", "phoneNumberId", "accessToken", "throughput", "id", "senderId")
}


def _errors(error: DomainError) -> list[UserError]:
    return UserError.all(error, rename=_INPUT)


@strawberry.type
class SenderQueries:
    @strawberry.field(description="The workspace's connected senders, the default first.")
    async def senders(self, info: Info) -> list[Sender]:
        principal = info.context.require(info)
        return [Sender.of(s) for s in await service.list_senders(principal.workspace_id)]


@strawberry.type
class SenderMutations:
    @strawberry.mutation(description="Connect a phone number (admin), checked with the Cloud API and its token.")
    async def connect_sender(self, info: Info, input: ConnectSenderInput) -> SenderPayload:
        try:
            principal = info.context.require(info)
            box, checker = info.context.senders()
            view = await service.connect_sender(
                principal,
                box,
                checker,
                name=input.name,
                waba_id=input.waba_id,
                phone_number_id=input.phone_number_id,
                access_token=input.access_token,
                throughput=input.throughput,
                make_default=input.make_default,
            )
        except DomainError as error:
            return SenderPayload(sender=None, user_errors=_errors(error))
        # its templates, at once (syncTemplates reads them again; a refusal here is no
        # reason to undo the connection)
        with contextlib.suppress(DomainError):
            await templates.sync(principal.workspace_id, view.id, box, info.context.request.app.state.provider)
        return SenderPayload(sender=Sender.of(view), user_errors=[])

    @strawberry.mutation(description="Rename a sender, give it a new token, set its throughput or make it the default.")
    async def update_sender(self, info: Info, input: UpdateSenderInput) -> SenderPayload:
        try:
            principal = info.context.require(info)
            box, checker = info.context.senders()
            view = await service.update_sender(
                principal,
                box,
                checker,
                expect_id(input.id, "Sender", ("input", "id")),
                name=input.name,
                access_token=input.access_token,
                throughput=input.throughput,
                make_default=input.make_default,
            )
        except DomainError as error:
            return SenderPayload(sender=None, user_errors=_errors(error))
        return SenderPayload(sender=Sender.of(view), user_errors=[])

    @strawberry.mutation(description="Disconnect a sender (admin); refused while a campaign sends from it.")
    async def disconnect_sender(self, info: Info, id: strawberry.ID) -> DisconnectSenderPayload:
        try:
            principal = info.context.require(info)
            await service.disconnect_sender(principal, expect_id(id, "Sender"))
        except DomainError as error:
            return DisconnectSenderPayload(disconnected_id=None, user_errors=UserError.all(error))
        return DisconnectSenderPayload(disconnected_id=id, user_errors=[])
