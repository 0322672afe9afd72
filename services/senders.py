"""Sender accounts as a resource of the workspace: connect (checked with a real call to
the Cloud API), list, update, disconnect; and the credentials a worker sends with.

The access token is sealed before it is written (services/tokens.TokenBox) and opened
only for a provider call or a check; no view of a sender carries it. A phone number is
connected to one workspace at most (a partial unique index over live senders), so a
status webhook naming it has exactly one owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from tortoise.exceptions import IntegrityError

from domain import senders as dom
from domain.errors import Conflict, LimitExceeded, NotFound, ValidationFailed, collect
from domain.lifecycle import CampaignStatus
from models import Campaign, Sender
from providers.whatsapp import LookupRefused, NumberInfo
from services import db
from services.auth import Principal
from services.tokens import TokenBox

#: Meta's throughput levels, in messages per second (docs/STACK.md)
THROUGHPUT_OF_LEVEL = {"STANDARD": 80, "HIGH": 1000}
#: a campaign in one of these sends (or will) from its sender: it cannot be disconnected
_BUSY = (CampaignStatus.SCHEDULED, CampaignStatus.QUEUED, CampaignStatus.PROCESSING, CampaignStatus.PAUSED)


class NumberChecker(Protocol):
    async def lookup_number(self, phone_number_id: str, access_token: str) -> NumberInfo | LookupRefused: ...


@dataclass(frozen=True, slots=True)
class SenderView:
    """A sender as the API shows it: never its token."""

    id: int
    name: str
    waba_id: str
    phone_number_id: str
    display_phone_number: str
    verified_name: str | None
    throughput: int
    messaging_tier: dom.Tier
    is_default: bool
    created_at: datetime
    checked_at: datetime | None

    @classmethod
    def of(cls, row: Sender) -> SenderView:
        return cls(
            row.id,
            row.name,
            row.waba_id,
            row.phone_number_id,
            row.display_phone_number,
            row.verified_name,
            row.throughput,
            dom.parse_tier(row.messaging_tier) or dom.Tier.TIER_250,
            row.is_default,
            row.created_at,
            row.checked_at,
        )


def _now() -> datetime:
    return datetime.now(UTC)


def not_found(field: tuple[str, ...] = ("id",)) -> NotFound:
    return NotFound("No such sender.", field)


async def list_senders(workspace_id: int) -> list[SenderView]:
    """The workspace's connected senders, the default first, then oldest first."""
    rows = await Sender.filter(workspace_id=workspace_id, disconnected_at__isnull=True).order_by("-is_default", "id")
    return [SenderView.of(r) for r in rows]


async def _get(workspace_id: int, sender_id: int, field: tuple[str, ...] = ("id",)) -> Sender:
    row = await Sender.get_or_none(id=sender_id, workspace_id=workspace_id, disconnected_at__isnull=True)
    if row is None:
        raise not_found(field)
    return row


async def get_sender(workspace_id: int, sender_id: int) -> SenderView | None:
    row = await Sender.get_or_none(id=sender_id, workspace_id=workspace_id, disconnected_at__isnull=True)
    return SenderView.of(row) if row else None


async def _check(checker: NumberChecker, phone_number_id: str, token: str) -> NumberInfo:
    """The Cloud API's view of the number, or ValidationFailed naming the input at fault."""
    found = await checker.lookup_number(phone_number_id, token)
    if isinstance(found, NumberInfo):
        return found
    if found.code == 190:
        raise ValidationFailed(f"accessToken was refused by the Cloud API: {found.message}", ("accessToken",))
    if found.code in (100, 200, 10):
        raise ValidationFailed(f"phoneNumberId is not a number this token may use: {found.message}", ("phoneNumberId",))
    raise ValidationFailed(f"the sender could not be checked: {found.message}", ("phoneNumberId",))


async def connect_sender(
    principal: Principal,
    box: TokenBox,
    checker: NumberChecker,
    *,
    name: str,
    waba_id: str,
    phone_number_id: str,
    access_token: str,
    throughput: int | None = None,
    make_default: bool = False,
) -> SenderView:
    """Connect a phone number: every input checked (all errors at once), then the
    number looked up with the token; nothing is written unless both pass."""
    errors: list[ValidationFailed] = []
    clean: dict[str, object] = {}
    for key, check, value in (
        ("name", dom.check_name, name),
        ("waba_id", dom.check_waba_id, waba_id),
        ("phone_number_id", dom.check_phone_number_id, phone_number_id),
        ("access_token", dom.check_token, access_token),
    ):
        try:
            clean[key] = check(value)
        except ValidationFailed as error:
            errors.append(error)
    if throughput is not None:
        try:
            dom.check_throughput(throughput)
        except ValidationFailed as error:
            errors.append(error)
    collect(errors)
    number, token = str(clean["phone_number_id"]), str(clean["access_token"])
    if await Sender.filter(phone_number_id=number, disconnected_at__isnull=True).exists():
        raise Conflict("This phone number is already connected (to this or another workspace).", ("phoneNumberId",))
    info = await _check(checker, number, token)
    rate = throughput or THROUGHPUT_OF_LEVEL.get(info.throughput_level or "", dom.DEFAULT_THROUGHPUT)
    tier = dom.parse_tier(info.messaging_limit) or dom.Tier.TIER_250
    async with db.in_transaction() as conn:
        lock = " FOR UPDATE" if db.is_postgres(conn) else ""
        await db.fetch_rows(conn, f"SELECT id FROM workspace WHERE id = ?{lock}", [principal.workspace_id])
        live = await Sender.filter(workspace_id=principal.workspace_id, disconnected_at__isnull=True).using_db(conn)
        if len(live) >= dom.MAX_SENDERS:
            raise LimitExceeded(f"A workspace has at most {dom.MAX_SENDERS} senders.", ("phoneNumberId",))
        default = make_default or not live
        if default:
            await Sender.filter(workspace_id=principal.workspace_id).using_db(conn).update(is_default=False)
        try:
            row = await Sender.create(
                using_db=conn,
                workspace_id=principal.workspace_id,
                name=clean["name"],
                waba_id=clean["waba_id"],
                phone_number_id=number,
                display_phone_number=info.display_phone_number,
                verified_name=info.verified_name,
                access_token_sealed=box.seal(token),
                throughput=rate,
                messaging_tier=tier.value,
                is_default=default,
                checked_at=_now(),
            )
        except IntegrityError:  # connected by someone else since the check above
            raise Conflict("This phone number is already connected.", ("phoneNumberId",)) from None
    return SenderView.of(row)


async def update_sender(
    principal: Principal,
    box: TokenBox,
    checker: NumberChecker,
    sender_id: int,
    *,
    name: str | None = None,
    access_token: str | None = None,
    throughput: int | None = None,
    make_default: bool | None = None,
) -> SenderView:
    """Change what is given; a new token is checked with the Cloud API first."""
    errors: list[ValidationFailed] = []
    changes: dict[str, object] = {}
    for key, check, value in (("name", dom.check_name, name), ("access_token", dom.check_token, access_token)):
        if value is None:
            continue
        try:
            changes[key] = check(value)
        except ValidationFailed as error:
            errors.append(error)
    if throughput is not None:
        try:
            changes["throughput"] = dom.check_throughput(throughput)
        except ValidationFailed as error:
            errors.append(error)
    collect(errors)
    row = await _get(principal.workspace_id, sender_id)
    if "access_token" in changes:
        info = await _check(checker, row.phone_number_id, str(changes["access_token"]))
        changes["access_token_sealed"] = box.seal(str(changes.pop("access_token")))
        changes.update(display_phone_number=info.display_phone_number, verified_name=info.verified_name)
        # the messaging tier as Meta reports it now (it moves up and down with use and quality)
        tier = dom.parse_tier(info.messaging_limit)
        if tier is not None:
            changes["messaging_tier"] = tier.value
        changes["checked_at"] = _now()
    async with db.in_transaction() as conn:
        if make_default:
            await Sender.filter(workspace_id=principal.workspace_id).using_db(conn).update(is_default=False)
            changes["is_default"] = True
        if changes:
            await Sender.filter(id=row.id).using_db(conn).update(updated_at=_now(), **changes)
    return SenderView.of(await _get(principal.workspace_id, sender_id))


async def disconnect_sender(principal: Principal, sender_id: int) -> int:
    """Disconnect a sender: refused (CONFLICT) while a campaign sends, or will, from it.
    Its row stays for the history (old campaigns name it), without its token; draft
    campaigns that picked it fall back to the workspace's default."""
    async with db.in_transaction() as conn:
        row = (
            await Sender.filter(id=sender_id, workspace_id=principal.workspace_id, disconnected_at__isnull=True)
            .using_db(conn)
            .first()
        )
        if row is None:
            raise not_found()
        busy = await Campaign.filter(sender_id=sender_id, status__in=_BUSY).using_db(conn).first()
        if busy is not None:
            raise Conflict(
                f"Campaign {busy.name!r} is {busy.status.value} with this sender: finish or cancel it first.", ("id",)
            )
        await (
            Sender.filter(id=sender_id)
            .using_db(conn)
            .update(disconnected_at=_now(), is_default=False, access_token_sealed="")
        )
        await Campaign.filter(sender_id=sender_id, status=CampaignStatus.DRAFT).using_db(conn).update(sender_id=None)
        if row.is_default:
            heir = (
                await Sender.filter(workspace_id=principal.workspace_id, disconnected_at__isnull=True)
                .using_db(conn)
                .order_by("id")
                .first()
            )
            if heir is not None:
                await Sender.filter(id=heir.id).using_db(conn).update(is_default=True)
    return sender_id


async def ensure_sender(
    workspace_id: int,
    box: TokenBox,
    *,
    name: str,
    waba_id: str,
    phone_number_id: str,
    display_phone_number: str,
    access_token: str,
    throughput: int,
    tier: dom.Tier,
) -> SenderView:
    """A sender known without asking the Cloud API (`campaigns dev` connects its own
    simulator's number this way): the live one of that number, else a new default."""
    row = await Sender.get_or_none(phone_number_id=phone_number_id, disconnected_at__isnull=True)
    if row is None:
        has_default = await Sender.filter(
            workspace_id=workspace_id, disconnected_at__isnull=True, is_default=True
        ).exists()
        row = await Sender.create(
            workspace_id=workspace_id,
            name=name,
            waba_id=waba_id,
            phone_number_id=phone_number_id,
            display_phone_number=display_phone_number,
            access_token_sealed=box.seal(access_token),
            throughput=throughput,
            messaging_tier=tier.value,
            is_default=not has_default,
        )
    return SenderView.of(row)


async def any_sender(sender_id: int) -> SenderView | None:
    """A sender by id, disconnected ones included (a campaign's history names them);
    callers reach it through a campaign of their own workspace."""
    row = await Sender.get_or_none(id=sender_id)
    return SenderView.of(row) if row else None


async def default_sender_id(workspace_id: int) -> int | None:
    """The sender a new campaign sends from (None: the bootstrap sender)."""
    row = await Sender.filter(workspace_id=workspace_id, disconnected_at__isnull=True, is_default=True).first()
    return row.id if row else None


async def live_or_default(workspace_id: int, sender_id: int | None) -> int | None:
    """`sender_id` if it is still connected, else the workspace's default (a copy of a
    campaign whose sender was disconnected sends from the default)."""
    if sender_id is not None and await Sender.filter(id=sender_id, disconnected_at__isnull=True).exists():
        return sender_id
    return await default_sender_id(workspace_id)


async def pick_sender(
    principal: Principal, sender_id: int | None, field: tuple[str, ...] = ("senderId",)
) -> int | None:
    """The sender a campaign is to use: the given one (of this workspace) or the default."""
    if sender_id is None:
        return await default_sender_id(principal.workspace_id)
    return (await _get(principal.workspace_id, sender_id, field)).id


async def credentials(box: TokenBox, sender_id: int) -> dom.Credentials | None:
    """What a worker sends with (None: no such live sender)."""
    row = await Sender.get_or_none(id=sender_id, disconnected_at__isnull=True)
    if row is None:
        return None
    tier = dom.parse_tier(row.messaging_tier) or dom.Tier.TIER_250
    return dom.Credentials(row.phone_number_id, box.open(row.access_token_sealed), row.throughput, tier)
