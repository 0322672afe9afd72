"""GraphQL object types of the contract, built from models without extra queries
except where a field needs its own (messages, events, report)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from functools import lru_cache
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode
from strawberry.scalars import JSON
from strawberry.types.nodes import SelectedField

import models
from domain import lifecycle, paging
from domain.ids import encode_cursor, parse_global_id, to_global_id
from domain.lifecycle import CampaignStatus
from domain.messages import Channel, MessageStatus
from domain.paging import Window
from domain.stats import STAT_FIELDS, Stats
from schema.delivery import LocalSendTime, PlannedSendHour, SendWindow, WaitingGroup
from services import delivery, optouts, reads
from services.reads import CampaignPage, CampaignRow, Page

if TYPE_CHECKING:
    from schema.recurring import RecurringSchedule
    from schema.senders import Sender

# strawberry.enum registers the domain enums themselves: one enum, no mapping code.
strawberry.enum(CampaignStatus, name="CampaignStatus")
strawberry.enum(MessageStatus, name="MessageStatus")
strawberry.enum(Channel, name="Channel")
# The contract's CampaignAction: the user actions of the lifecycle, same names.
_CampaignAction = Enum(  # type: ignore[misc]
    "CampaignAction", {a.name: a.value for a in lifecycle.USER_ACTIONS}, type=str
)
CampaignAction = strawberry.enum(
    _CampaignAction,
    name="CampaignAction",
    description="What a user may do to a campaign now; the lifecycle table decides.",
)


#: each status's allowedActions, looked up once: a list page asks for them per campaign
_ALLOWED_ACTIONS: dict[CampaignStatus, tuple[CampaignAction, ...]] = {  # type: ignore[valid-type]
    status: tuple(CampaignAction[a.name] for a in lifecycle.allowed_actions(status)) for status in CampaignStatus
}


@strawberry.interface(description="Relay object identification: ids are opaque and global.")
class Node:
    id: strawberry.ID


@strawberry.type(
    description=(
        "Relay's PageInfo. hasNextPage and hasPreviousPage are exact: whether the connection "
        "(its filters applied) has edges after endCursor and before startCursor."
    )
)
class PageInfo:
    start_cursor: str | None
    end_cursor: str | None
    _page: strawberry.Private[Page]

    @strawberry.field
    async def has_next_page(self) -> bool:
        return await self._page.has_next_page()

    @strawberry.field
    async def has_previous_page(self) -> bool:
        return await self._page.has_previous_page()

    @classmethod
    def of(cls, page: Page, cursors: list[str]) -> PageInfo:
        start, end = (cursors[0], cursors[-1]) if cursors else (None, None)
        return cls(start_cursor=start, end_cursor=end, _page=page)


def page_window(
    info: strawberry.Info, first: int | None, after: str | None, last: int | None, before: str | None, default: int
) -> Window:
    """The page a connection field's arguments ask for. `first` has a default in the
    schema, so with `last` it counts only when the query gives it (else every
    `last` would come with the default `first`, which domain/paging.py refuses)."""
    if last is not None:
        field = info.selected_fields[0]
        if not isinstance(field, SelectedField) or field.arguments.get("first") is None:
            first = None
    return paging.window(first, after, last, before, default)


def asks_for(info: strawberry.Info, name: str) -> bool:
    """Whether the field `info` resolves selects `name` directly below it (fragments
    looked into; a @skip is not weighed: asking too much only costs a count). Read from
    graphql-core's nodes: `info.selected_fields` converts the field's whole subtree."""
    raw = info._raw_info
    return any(_selects(node.selection_set, name, raw.fragments) for node in raw.field_nodes)


def _selects(selection_set: SelectionSetNode | None, name: str, fragments: dict[str, Any]) -> bool:
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            if selection.name.value == name:
                return True
        elif isinstance(selection, InlineFragmentNode):
            if _selects(selection.selection_set, name, fragments):
                return True
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None and _selects(fragment.selection_set, name, fragments):
                return True
    return False


@strawberry.type(
    description=(
        "Every message is in exactly one state, so total = pending + sent + failed + "
        "cancelled.\nsent, delivered and read are a funnel: sent counts messages the "
        "provider accepted and\nthat have not failed since (it includes delivered and "
        "read); delivered includes read."
    )
)
class CampaignStats:
    total: int
    pending: int = strawberry.field(description="not yet resolved, in flight included")
    sent: int
    delivered: int
    read: int
    replied: int = strawberry.field(
        description="recipients who wrote back after their message was sent (a reply counts for the latest one)"
    )
    failed: int
    cancelled: int = strawberry.field(description="not sent because the campaign was cancelled")
    progress: float = strawberry.field(description="processed / total, 0..1")
    delivery_rate: float = strawberry.field(description="delivered / sent")
    read_rate: float = strawberry.field(description="read / delivered")
    failure_rate: float = strawberry.field(description="failed / (sent + failed)")

    @classmethod
    def of(cls, s: Stats) -> CampaignStats:
        return _stats_of_counters(_counters(s))


@lru_cache(maxsize=4096)
def _stats_of_counters(counters: tuple[int, ...]) -> CampaignStats:
    """The stats of these counters (STAT_FIELDS' order). Memoized: a function of the
    counters alone, so never stale, and a page's idle campaigns answer the same ones
    request after request (building them was 2.6 µs a campaign, over half of its
    object). Nothing writes to a CampaignStats, so one may serve many answers."""
    s = Stats(*counters)  # STAT_FIELDS are Stats' fields, in their order
    return CampaignStats(
        **dict(zip(STAT_FIELDS, counters, strict=True)),
        progress=s.progress,
        delivery_rate=s.delivery_rate,
        read_rate=s.read_rate,
        failure_rate=s.failure_rate,
    )


#: a campaign's (or Stats') counters as a tuple, in STAT_FIELDS' order: one C call a
#: row where a comprehension of getattr was a tenth of building a campaigns page
_counters = attrgetter(*STAT_FIELDS)


@strawberry.type
class Message(Node):
    phone: str
    variables: JSON
    status: MessageStatus
    provider_message_id: str | None
    error_code: str | None
    error_message: str | None
    attempts: int
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None

    @classmethod
    def of(cls, m: models.Message | models.TestMessage) -> Message:
        """A campaign's message, or a test message (kept in its own table, no receipts)."""
        test = isinstance(m, models.TestMessage)
        return cls(
            id=strawberry.ID(to_global_id("TestMessage" if test else "Message", m.id)),
            phone=m.phone,
            variables=m.variables,
            status=m.status,
            provider_message_id=m.provider_message_id,
            error_code=m.error_code,
            error_message=m.error_message,
            attempts=m.attempts,
            sent_at=m.sent_at,
            delivered_at=None if isinstance(m, models.TestMessage) else m.delivered_at,
            read_at=None if isinstance(m, models.TestMessage) else m.read_at,
            failed_at=m.failed_at,
        )


@strawberry.type
class MessageEdge:
    node: Message
    cursor: str


@strawberry.type
class MessageConnection:
    edges: list[MessageEdge]
    page_info: PageInfo
    _page: strawberry.Private[Page]

    @strawberry.field
    async def total_count(self) -> int:
        return await self._page.total_count()

    @classmethod
    def of(cls, page: Page) -> MessageConnection:
        edges = [MessageEdge(node=Message.of(m), cursor=encode_cursor(m.id)) for m in page.rows]
        return cls(edges=edges, page_info=PageInfo.of(page, [e.cursor for e in edges]), _page=page)


@strawberry.type
class CampaignEvent:
    from_: CampaignStatus | None = strawberry.field(name="from")
    to: CampaignStatus
    action: str
    actor: str = strawberry.field(
        description="who or what caused it: an API key's name, 'scheduler', 'worker', 'failure-guard'"
    )
    reason: str | None
    at: datetime


@strawberry.type
class FailureBucket:
    code: str
    message: str = strawberry.field(description="what the code means, in plain words, and what to do about it")
    count: int


@strawberry.type(description="Messages billable in one pricing category (Meta's per-message pricing).")
class BillableCount:
    category: str = strawberry.field(description="Meta's pricing category: marketing, utility, authentication, ...")
    count: int = strawberry.field(description="messages billed in it, each counted once")


@strawberry.type
class TimelinePoint:
    at: datetime
    sent: int
    delivered: int
    read: int
    failed: int


@strawberry.type
class CampaignReport:
    stats: CampaignStats
    partial: bool = strawberry.field(description="true unless the campaign completed")
    csv_url: str = strawberry.field(description="path of the per-recipient CSV export")
    _campaign_id: strawberry.Private[int]

    @strawberry.field
    async def failures_by_code(self) -> list[FailureBucket]:
        rows = await reads.failures_by_code(self._campaign_id)
        return [FailureBucket(code=r["code"], message=r["message"], count=int(r["count"])) for r in rows]

    @strawberry.field(
        description=(
            "Billable messages per pricing category, most first: each message counted the first time a status "
            "webhook says it is billable."
        )
    )
    async def billable(self) -> list[BillableCount]:
        return [
            BillableCount(category=r["category"], count=int(r["count"]))
            for r in await reads.billable(self._campaign_id)
        ]

    @strawberry.field
    async def timeline(self, bucket_seconds: int | None = 60) -> list[TimelinePoint]:
        bucket = 60 if bucket_seconds is None else bucket_seconds
        return [TimelinePoint(**p) for p in await reads.timeline(self._campaign_id, bucket)]


@strawberry.type
class Campaign(Node):
    name: str
    channel: Channel
    body: str = strawberry.field(
        description="Message body; {{placeholders}} are filled from each recipient's variables."
    )
    template_name: str | None = strawberry.field(
        description="WhatsApp template name and language, where the channel needs one."
    )
    template_language: str | None
    status: CampaignStatus
    # a value, not a resolver: a list page asks for it per campaign, and a resolver's
    # call costs more than the list it returns (its status's, looked up once)
    allowed_actions: list[CampaignAction] = strawberry.field(  # type: ignore[valid-type]
        description="What a user may do to a campaign now; the lifecycle table decides."
    )
    status_reason: str | None = strawberry.field(
        description=(
            "Why the campaign is paused, failed or cancelled, where a reason is known; while PROCESSING, why "
            "its remaining messages wait (see nextSendAt)."
        )
    )
    next_send_at: datetime | None = strawberry.field(
        description=(
            "While everything a PROCESSING campaign has left waits (its local send times, its send window, the "
            "sender's daily messaging limit, WhatsApp's per-user marketing limit 131049): when the next message "
            "goes out. Null otherwise."
        )
    )
    time_zone: str | None = strawberry.field(
        description=(
            "The IANA zone of recipients whose own is unknown (neither a `timezone` variable nor their number "
            "tells it); null: UTC."
        )
    )
    scheduled_at: datetime | None
    send_rate: int | None = strawberry.field(
        description="Messages per second at most; null means the provider account's limit."
    )
    failure_threshold: float | None = strawberry.field(
        description=("Auto-pause when failureRate exceeds this after failureSampleSize attempts; null turns it off.")
    )
    failure_sample_size: int
    stats: CampaignStats
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    version: int = strawberry.field(description="Grows with every change of status or settings.")
    _pk: strawberry.Private[int]
    _sender_id: strawberry.Private[int | None] = None
    _send_window: strawberry.Private[str | None] = None
    _local_send: strawberry.Private[str | None] = None

    @strawberry.field(description="When its messages may start; null: at any hour.")
    def send_window(self) -> SendWindow | None:
        return SendWindow.of(self._send_window)

    @strawberry.field(description="Set by scheduleCampaignInLocalTime: the date and time in each recipient's zone.")
    def local_send_time(self) -> LocalSendTime | None:
        return LocalSendTime.of(self._local_send)

    @strawberry.field(description="Its PENDING messages that wait now, by reason and time zone, the soonest first.")
    async def waiting(self) -> list[WaitingGroup]:
        return [WaitingGroup.of(g) for g in await delivery.waiting_now(self._pk)]

    @strawberry.field(
        description=(
            "Hour by hour (UTC), how many of its messages still to go become due: the plan of a local-time or "
            "windowed campaign. Empty once nothing is left to send."
        )
    )
    async def send_plan(self) -> list[PlannedSendHour]:
        return [PlannedSendHour.of(p) for p in await delivery.send_plan_now(self._pk)]

    @strawberry.field(description="The sender it sends from; null: the deployment's bootstrap sender.")
    async def sender(self, info: strawberry.Info) -> Annotated[Sender, strawberry.lazy("schema.senders")] | None:
        if self._sender_id is None:
            return None
        from schema.senders import Sender as SenderType  # schema.senders imports this module
        from services import senders

        found = await senders.any_sender(self._sender_id)
        return SenderType.of(found) if found else None

    @strawberry.field(description="The recurring schedule it is the model of (its live one, else its latest).")
    async def recurring_schedule(self) -> Annotated[RecurringSchedule, strawberry.lazy("schema.recurring")] | None:
        from schema.recurring import schedule_of_model  # schema.recurring imports this module

        return await schedule_of_model(self._pk)

    @strawberry.field(description="The recurring schedule that made it, if it is an occurrence of one.")
    async def occurrence_of(self) -> Annotated[RecurringSchedule, strawberry.lazy("schema.recurring")] | None:
        from schema.recurring import schedule_of_occurrence

        return await schedule_of_occurrence(self._pk)

    @strawberry.field(
        description=(
            f"Oldest first. first/after page forward, last/before backward; at most {reads.MAX_PAGE} a page, "
            f"first is {reads.MESSAGES_PAGE} unless last is given."
        )
    )
    async def messages(
        self,
        info: strawberry.Info,
        first: int | None = reads.MESSAGES_PAGE,
        after: str | None = None,
        status: list[MessageStatus] | None = None,  # type: ignore[valid-type]
        last: int | None = None,
        before: str | None = None,
    ) -> MessageConnection:
        window = page_window(info, first, after, last, before, reads.MESSAGES_PAGE)
        return MessageConnection.of(await reads.list_messages(self._pk, window, status))

    @strawberry.field(description="Status history, oldest first.")
    async def events(self) -> list[CampaignEvent]:
        return [
            CampaignEvent(from_=e.from_status, to=e.to_status, action=e.action, actor=e.actor, reason=e.reason, at=e.at)
            for e in await reads.list_events(self._pk)
        ]

    @strawberry.field
    def report(self) -> CampaignReport:
        return CampaignReport(
            stats=self.stats,
            partial=self.status is not CampaignStatus.COMPLETED,
            csv_url=f"/campaigns/{self.id}/report.csv",
            _campaign_id=self._pk,
        )

    @classmethod
    def of(cls, c: models.Campaign | CampaignRow) -> Campaign:
        return cls(
            id=strawberry.ID(to_global_id("Campaign", c.id)),
            name=c.name,
            channel=c.channel,
            body=c.body,
            template_name=c.template_name,
            template_language=c.template_language,
            status=c.status,
            allowed_actions=list(_ALLOWED_ACTIONS[c.status]),
            status_reason=c.status_reason,
            next_send_at=c.next_send_at,
            time_zone=c.time_zone,
            scheduled_at=c.scheduled_at,
            send_rate=c.send_rate,
            failure_threshold=c.failure_threshold,
            failure_sample_size=c.failure_sample_size,
            stats=_stats_of_counters(_counters(c)),
            created_at=c.created_at,
            updated_at=c.updated_at,
            started_at=c.started_at,
            completed_at=c.completed_at,
            version=c.version,
            _pk=c.id,
            _sender_id=c.sender_id,
            _send_window=c.send_window,
            _local_send=c.local_send,
        )


@strawberry.type
class CampaignEdge:
    node: Campaign
    cursor: str


@strawberry.type
class CampaignConnection:
    edges: list[CampaignEdge]
    page_info: PageInfo
    _page: strawberry.Private[CampaignPage]

    @strawberry.field
    async def total_count(self) -> int:
        return await self._page.total_count()

    @classmethod
    def of(cls, page: CampaignPage) -> CampaignConnection:
        edges = [CampaignEdge(node=Campaign.of(c), cursor=encode_cursor(c.id)) for c in page.rows]
        return cls(edges=edges, page_info=PageInfo.of(page, [e.cursor for e in edges]), _page=page)


@strawberry.type
class Workspace(Node):
    name: str

    @strawberry.field(
        description=(
            "Inbound messages that opt the sender's phone out of this workspace: the whole message, trimmed, "
            "case-insensitive (setStopKeywords)."
        )
    )
    async def stop_keywords(self) -> list[str]:
        parsed = parse_global_id(self.id)
        return list(await optouts.stop_keywords(parsed[1])) if parsed else []
