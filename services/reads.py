"""Read paths: campaign lists, message pages, history and the report's aggregates.

Pages are Relay connections (domain/paging.py) read with keyset cursors on the primary
key (ids grow with creation time), so page N costs the same as page 1 and rows inserted
meanwhile never shift a page. A page reads one row more than it returns, in the
direction it reads, to know whether more follow; whether more lie on its other side
(past `after`, or past `before` going backward) is one indexed EXISTS, run only when
the client asks for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from tortoise.queryset import QuerySet

from domain.errors import ValidationFailed
from domain.lifecycle import CampaignStatus
from domain.messages import Channel, MessageStatus, describe
from domain.paging import MAX_PAGE as MAX_PAGE  # re-exported: schema/cost.py sizes pages by it
from domain.paging import Window
from models import CampaignEvent, Message
from services import db
from services.auth import Principal

#: page sizes when a client gives neither first nor last (the schema's defaults of first)
CAMPAIGNS_PAGE = 20
MESSAGES_PAGE = 50
MAX_TIMELINE_POINTS = 10_000

#: Tortoise's lookups for the keyset comparisons
_LOOKUPS = {"<": "lt", ">": "gt", "<=": "lte", ">=": "gte"}


def _keyset(window: Window, descending: bool) -> tuple[list[tuple[str, int]], bool]:
    """The window's bounds as (operator, id) conditions on `id`, and whether to read
    ids descending: in the connection's order forward, against it backward."""
    later, earlier = ("<", ">") if descending else (">", "<")
    bounds = []
    if window.after is not None:
        bounds.append((later, window.after))
    if window.before is not None:
        bounds.append((earlier, window.before))
    return bounds, descending != window.backward


@dataclass
class Page:
    """One page of a connection: its rows in the connection's order, and what its
    pageInfo says (None: not known from the rows read, found out if asked)."""

    rows: list[Any]
    window: Window
    descending: bool
    has_next: bool | None
    has_previous: bool | None

    @classmethod
    def of(cls, read: list[Any], window: Window, descending: bool, **rest: Any) -> Self:
        """The page of `read`, the rows fetched with one more than the window's size."""
        more = len(read) > window.size
        rows = read[: window.size]
        if window.backward:
            rows.reverse()
        # the side the page was read towards is known from the extra row; the other is
        # known empty without a cursor there, else asked of the database when wanted
        ahead = None if window.before is not None else False
        behind = None if window.after is not None else False
        has_next, has_previous = (ahead, more) if window.backward else (more, behind)
        return cls(rows, window, descending, has_next, has_previous, **rest)

    async def has_next_page(self) -> bool:
        if self.has_next is None:
            assert self.window.before is not None
            # a row at or past `before`, in the connection's order
            self.has_next = await self._exists("<=" if self.descending else ">=", self.window.before)
        return self.has_next

    async def has_previous_page(self) -> bool:
        if self.has_previous is None:
            assert self.window.after is not None
            # a row at or before `after`, in the connection's order
            self.has_previous = await self._exists(">=" if self.descending else "<=", self.window.after)
        return self.has_previous

    async def total_count(self) -> int:
        raise NotImplementedError

    async def _exists(self, op: str, pk: int) -> bool:
        """Whether the connection (its filters, no window) has a row with `id op pk`."""
        raise NotImplementedError


@dataclass
class MessagePage(Page):
    query: QuerySet[Any]

    async def total_count(self) -> int:
        return await self.query.count()

    async def _exists(self, op: str, pk: int) -> bool:
        return await self.query.filter(**{f"id__{_LOOKUPS[op]}": pk}).exists()


@dataclass(slots=True)
class CampaignRow:
    """A campaign as the list reads it: plain values, no ORM object (building Tortoise
    models was half the cost of a campaigns page). Not frozen: a frozen dataclass sets
    each of its 31 fields through object.__setattr__, 7 µs a row against 0.6; nothing
    writes to one."""

    id: int
    workspace_id: int
    name: str
    channel: Channel
    body: str
    template_name: str | None
    template_language: str | None
    status: CampaignStatus
    status_reason: str | None
    version: int
    scheduled_at: datetime | None
    send_rate: int | None
    failure_threshold: float | None
    failure_sample_size: int
    total: int
    pending: int
    sent: int
    delivered: int
    read: int
    replied: int
    failed: int
    cancelled: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    next_send_at: datetime | None
    sender_id: int | None
    time_zone: str | None
    send_window: str | None
    local_send: str | None


_ROW_FIELDS = [f for f in CampaignRow.__dataclass_fields__]
_COLUMNS = ", ".join(f'"{f}"' for f in _ROW_FIELDS)
#: the column the page's query counts the connection in (`with_count`)
_COUNT = "connection_count"
_TIMES = {"scheduled_at", "created_at", "updated_at", "started_at", "completed_at", "next_send_at"}


def _when(value: Any) -> datetime | None:
    # SQLite hands back ISO text; asyncpg hands back datetimes
    return datetime.fromisoformat(value) if isinstance(value, str) else value


_TIME_AT = [_ROW_FIELDS.index(f) for f in sorted(_TIMES)]
_STATUS_AT, _CHANNEL_AT = _ROW_FIELDS.index("status"), _ROW_FIELDS.index("channel")
#: members by value: a dict lookup is a twentieth of calling the enum (0.23 µs)
_STATUSES = {s.value: s for s in CampaignStatus}
_CHANNELS = {c.value: c for c in Channel}


def _campaign_row(raw: Sequence[Any]) -> CampaignRow:
    """The row of `SELECT _COLUMNS`, by position."""
    values = list(raw)[: len(_ROW_FIELDS)]
    for i in _TIME_AT:
        values[i] = _when(values[i])
    status, channel = values[_STATUS_AT], values[_CHANNEL_AT]
    # an unknown value still fails as the enum's own ValueError
    values[_STATUS_AT] = _STATUSES.get(status) or CampaignStatus(status)
    values[_CHANNEL_AT] = _CHANNELS.get(channel) or Channel(channel)
    return CampaignRow(*values)


@dataclass
class CampaignPage(Page):
    where: str
    params: list[Any]
    #: the connection's count, when the page's own query read it (`with_count`)
    count: int | None = None

    async def total_count(self) -> int:
        if self.count is None:
            sql = f"SELECT COUNT(*) AS n FROM campaign WHERE {self.where}"
            self.count = int(await db.fetch_val(db.client(), sql, self.params) or 0)
        return self.count

    async def _exists(self, op: str, pk: int) -> bool:
        sql = f"SELECT 1 AS found FROM campaign WHERE {self.where} AND id {op} ? LIMIT 1"
        return bool(await db.fetch(db.client(), sql, [*self.params, pk]))


async def list_campaigns(
    principal: Principal,
    window: Window,
    statuses: list[CampaignStatus] | None,
    search: str | None,
    with_count: bool = False,
) -> CampaignPage:
    """The workspace's campaigns, newest first, filtered by status and name.
    `with_count`: the page's query also counts the connection (its filters, no window),
    for a totalCount without a second round trip (the count is the same statement's
    snapshot as the rows; an empty page reads it on its own when asked)."""
    where = "workspace_id = ?"
    params: list[Any] = [principal.workspace_id]
    if statuses:
        where += f" AND status IN ({', '.join('?' for _ in statuses)})"
        params += [s.value for s in statuses]
    if search and search.strip():
        escaped = search.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where += " AND LOWER(name) LIKE ? ESCAPE '\\'"
        params.append(f"%{escaped}%")
    bounds, read_descending = _keyset(window, descending=True)
    page_where = where + "".join(f" AND id {op} ?" for op, _ in bounds)
    counted = f", (SELECT COUNT(*) FROM campaign WHERE {where}) AS {_COUNT}" if with_count else ""
    rows = await db.fetch_positional(
        db.client(),
        f"SELECT {_COLUMNS}{counted} FROM campaign WHERE {page_where} "
        f"ORDER BY id {'DESC' if read_descending else 'ASC'} LIMIT ?",
        [*(params if with_count else ()), *params, *(pk for _, pk in bounds), window.size + 1],
    )
    count = int(rows[0][len(_ROW_FIELDS)]) if with_count and rows else None
    return CampaignPage.of([_campaign_row(r) for r in rows], window, True, where=where, params=params, count=count)


async def list_messages(campaign_id: int, window: Window, statuses: list[MessageStatus] | None) -> MessagePage:
    """A campaign's messages, oldest first, filtered by status."""
    query = Message.filter(campaign_id=campaign_id)
    if statuses:
        query = query.filter(status__in=statuses)
    bounds, read_descending = _keyset(window, descending=False)
    bounded = query
    for op, pk in bounds:
        bounded = bounded.filter(**{f"id__{_LOOKUPS[op]}": pk})
    rows = await bounded.order_by("-id" if read_descending else "id").limit(window.size + 1)
    return MessagePage.of(list(rows), window, False, query=query)


async def list_events(campaign_id: int) -> list[CampaignEvent]:
    return await CampaignEvent.filter(campaign_id=campaign_id).order_by("id")


async def failures_by_code(campaign_id: int) -> list[dict[str, Any]]:
    """The campaign's failures per code, most first, each code in plain words
    (domain/messages.FAILURE_TEXTS; a code it does not know by the provider's words)."""
    rows = await db.fetch(
        db.client(),
        "SELECT COALESCE(error_code, 'unknown') AS code, MAX(COALESCE(error_message, '')) AS message, "
        "COUNT(*) AS count FROM message WHERE campaign_id = ? AND status = 'FAILED' "
        "GROUP BY COALESCE(error_code, 'unknown') ORDER BY count DESC, code",
        [campaign_id],
    )
    return [row | {"message": describe(row["code"], row["message"] or None)} for row in rows]


async def billable(campaign_id: int) -> list[dict[str, Any]]:
    """How many of the campaign's messages were billable, per pricing category, most
    first (CampaignBillable, kept with the receipts)."""
    return await db.fetch(
        db.client(),
        "SELECT category, count FROM campaign_billable WHERE campaign_id = ? AND count > 0 "
        "ORDER BY count DESC, category",
        [campaign_id],
    )


_TIMELINE_COLUMNS = ("sent", "delivered", "read", "failed")


async def timeline(campaign_id: int, bucket_seconds: int) -> list[dict[str, Any]]:
    """Messages that reached each state per time bucket, oldest first."""
    if bucket_seconds < 1:
        raise ValidationFailed("bucketSeconds must be at least 1.", ("bucketSeconds",))
    conn = db.client()
    if db.is_postgres(conn):
        epoch = "CAST(FLOOR(EXTRACT(EPOCH FROM {col}) / ?) AS BIGINT)"
    else:
        epoch = "CAST(strftime('%s', {col}) AS INTEGER) / ?"
    parts = [
        f"SELECT '{name}' AS kind, {epoch.format(col=f'{name}_at')} AS bucket, COUNT(*) AS n "
        f"FROM message WHERE campaign_id = ? AND {name}_at IS NOT NULL GROUP BY bucket"
        for name in _TIMELINE_COLUMNS
    ]
    params: list[Any] = []
    for _ in _TIMELINE_COLUMNS:
        params += [bucket_seconds, campaign_id]
    rows = await db.fetch(conn, " UNION ALL ".join(parts), params)
    points: dict[int, dict[str, Any]] = {}
    for row in rows:
        bucket = int(row["bucket"])
        point = points.setdefault(bucket, {name: 0 for name in _TIMELINE_COLUMNS})
        point[row["kind"]] = int(row["n"])
    if len(points) > MAX_TIMELINE_POINTS:
        raise ValidationFailed(
            f"The timeline would have {len(points):,} points; use a larger bucketSeconds.",
            ("bucketSeconds",),
        )
    return [{"at": datetime.fromtimestamp(bucket * bucket_seconds, UTC), **points[bucket]} for bucket in sorted(points)]
