"""Each sender's message templates, synced from the Cloud API: when the sender is
connected, on demand (`syncTemplates`), and from `message_template_status_update`
webhooks. The registry is what the Cloud API last said; a sync replaces a sender's
templates whole (one transaction), so a template deleted on Meta disappears here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from domain.errors import NotFound, ValidationFailed
from domain.templates import APPROVED, TemplateInfo, parse_template, placeholders
from models import Campaign, Sender, Template
from providers.whatsapp import LookupRefused
from services import db
from services.tokens import TokenBox, TokenKeyError


class TemplateSource(Protocol):
    async def list_templates(self, waba_id: str, access_token: str) -> list[dict[str, Any]] | LookupRefused: ...


@dataclass(frozen=True, slots=True)
class TemplateView:
    id: int
    sender_id: int
    info: TemplateInfo
    synced_at: datetime

    @classmethod
    def of(cls, row: Template) -> TemplateView:
        info = TemplateInfo(
            row.meta_id,
            row.name,
            row.language,
            row.status,
            row.category,
            row.parameter_format,
            row.body,
            tuple(str(p) for p in row.parameters or ()),
        )
        return cls(row.id, row.sender_id, info, row.synced_at)


@dataclass(frozen=True, slots=True)
class Synced:
    sender_id: int
    count: int
    at: datetime


async def _live_sender(workspace_id: int, sender_id: int, field: tuple[str, ...]) -> Sender:
    row = await Sender.get_or_none(id=sender_id, workspace_id=workspace_id, disconnected_at__isnull=True)
    if row is None:
        raise NotFound("No such sender.", field)
    return row


async def sync(
    workspace_id: int, sender_id: int, box: TokenBox, source: TemplateSource, field: tuple[str, ...] = ("senderId",)
) -> Synced:
    """Read the sender's WABA's templates from the Cloud API and store them. Refused
    (VALIDATION on `field`, nothing changed) when the Cloud API refuses."""
    sender = await _live_sender(workspace_id, sender_id, field)
    try:
        token = box.open(sender.access_token_sealed)
    except TokenKeyError:
        raise ValidationFailed(
            "the sender's token cannot be opened with SENDER_TOKEN_KEY: give it again (updateSender).", field
        ) from None
    listed = await source.list_templates(sender.waba_id, token)
    if isinstance(listed, LookupRefused):
        raise ValidationFailed(f"the Cloud API refused the template list: {listed.message}", field)
    now = datetime.now(UTC)
    infos = {(t.name, t.language): t for t in (parse_template(raw) for raw in listed) if t is not None}
    async with db.in_transaction() as conn:
        await Template.filter(sender_id=sender.id).using_db(conn).delete()
        if infos:
            await Template.bulk_create(
                [
                    Template(
                        sender_id=sender.id,
                        meta_id=t.meta_id,
                        name=t.name,
                        language=t.language,
                        status=t.status,
                        category=t.category,
                        parameter_format=t.parameter_format,
                        body=t.body,
                        parameters=list(t.parameters),
                        synced_at=now,
                    )
                    for t in infos.values()
                ],
                using_db=conn,
            )
    return Synced(sender.id, len(infos), now)


async def list_templates(
    workspace_id: int, *, sender_id: int | None = None, status: str | None = None
) -> list[TemplateView]:
    """The workspace's templates (of live senders), by name then language."""
    query = Template.filter(sender__workspace_id=workspace_id, sender__disconnected_at__isnull=True)
    if sender_id is not None:
        query = query.filter(sender_id=sender_id)
    if status is not None:
        query = query.filter(status=status)
    return [TemplateView.of(r) for r in await query.order_by("name", "language", "sender_id")]


async def apply_status_update(waba_id: str, name: str, language: str, status: str) -> list[int]:
    """A `message_template_status_update` webhook: the template's new status for every
    live sender of that WABA. Returns the sender ids whose template changed."""
    senders: list[int] = await Sender.filter(waba_id=waba_id, disconnected_at__isnull=True).values_list(  # type: ignore[assignment]
        "id", flat=True
    )
    changed = []
    for sender_id in senders:
        moved = await Template.filter(sender_id=sender_id, name=name, language=language).update(
            status=status.upper(), synced_at=datetime.now(UTC)
        )
        if moved:
            changed.append(sender_id)
    return changed


async def check_for_launch(campaign: Campaign) -> None:
    """A templated campaign of a connected sender may leave DRAFT only with a template
    of that sender's registry, APPROVED, whose parameters its body fills one for one
    (VALIDATION naming the field at fault). Campaigns of the bootstrap sender have no
    registry to check: the Cloud API refuses a bad template at the first send (fatal).

    A campaign of a connected sender without a template is refused: WhatsApp delivers
    free text only inside the 24-hour customer service window (a day from the person's
    last message to the business), and a campaign starts conversations."""
    if campaign.sender_id is None:
        return
    if not campaign.template_name:
        raise ValidationFailed(
            "templateName: a campaign needs an approved WhatsApp template. WhatsApp delivers free-text messages "
            "only within 24 hours of the customer's last message to you (the customer service window); a "
            "campaign starts conversations, so it must use a template (see `templates`).",
            ("templateName",),
        )
    template = await Template.get_or_none(
        sender_id=campaign.sender_id, name=campaign.template_name, language=campaign.template_language or ""
    )
    where = f"{campaign.template_name} ({campaign.template_language})"
    if template is None:
        raise ValidationFailed(
            f"templateName: the sender has no template {where}; create it in WhatsApp Manager, then syncTemplates.",
            ("templateName",),
        )
    if template.status != APPROVED:
        raise ValidationFailed(
            f"templateName: the template {where} is {template.status}, not APPROVED.", ("templateName",)
        )
    wanted = len(template.parameters or ())
    given = len(placeholders(campaign.body))
    if given != wanted:
        raise ValidationFailed(
            f"body: the template {where} takes {wanted} parameters; the body's placeholders give {given} "
            "(one {{variable}} per parameter, in order).",
            ("body",),
        )
