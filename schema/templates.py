"""Message templates in GraphQL: `templates` (each sender's registry, as the Cloud API
last reported it) and `syncTemplates` (read it again now)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.errors import DomainError
from domain.ids import expect_id, to_global_id
from schema.context import Context
from schema.errors import UserError
from schema.types import Node
from services import templates as service

Info = strawberry.Info[Context, None]


@strawberry.type(description="A WhatsApp message template of a sender's business account.")
class Template(Node):
    sender_id: strawberry.ID
    name: str
    language: str
    status: str = strawberry.field(description="Meta's: APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ...")
    category: str = strawberry.field(description="MARKETING, UTILITY or AUTHENTICATION.")
    parameter_format: str = strawberry.field(description="POSITIONAL ({{1}}) or NAMED ({{first_name}}).")
    body: str
    parameters: list[str] = strawberry.field(description="The body's parameters in order.")
    synced_at: datetime

    @classmethod
    def of(cls, t: service.TemplateView) -> Template:
        return cls(
            id=strawberry.ID(to_global_id("Template", t.id)),
            sender_id=strawberry.ID(to_global_id("Sender", t.sender_id)),
            name=t.info.name,
            language=t.info.language,
            status=t.info.status,
            category=t.info.category,
            parameter_format=t.info.parameter_format,
            body=t.info.body,
            parameters=list(t.info.parameters),
            synced_at=t.synced_at,
        )


@strawberry.type
class SyncTemplatesPayload:
    templates: list[Template] | None
    user_errors: list[UserError]


@strawberry.type
class TemplateQueries:
    @strawberry.field(description="The templates of the workspace's senders, by name and language.")
    async def templates(
        self, info: Info, sender_id: strawberry.ID | None = None, status: str | None = None
    ) -> list[Template]:
        principal = info.context.require(info)
        sender = expect_id(sender_id, "Sender", ("senderId",)) if sender_id is not None else None
        views = await service.list_templates(principal.workspace_id, sender_id=sender, status=status)
        return [Template.of(v) for v in views]


@strawberry.type
class TemplateMutations:
    @strawberry.mutation(description="Read the sender's templates from the Cloud API again (write).")
    async def sync_templates(self, info: Info, sender_id: strawberry.ID) -> SyncTemplatesPayload:
        try:
            principal = info.context.require(info)
            box, _ = info.context.senders()
            pk = expect_id(sender_id, "Sender", ("senderId",))
            await service.sync(principal.workspace_id, pk, box, info.context.request.app.state.provider)
            views = await service.list_templates(principal.workspace_id, sender_id=pk)
        except DomainError as error:
            return SyncTemplatesPayload(templates=None, user_errors=UserError.all(error))
        return SyncTemplatesPayload(templates=[Template.of(v) for v in views], user_errors=[])
