"""Read paths: campaign lists, message pages, history and the report's aggregates.

Pages use keyset cursors on the primary key (ids grow with creation time), so page N
costs the same as page 1 and rows inserted meanwhile never shift a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.queryset import QuerySet

from domain.errors import ValidationFailed
from domain.ids import decode_cursor
from domain.lifecycle import CampaignStatus
from domain.messages import Channel, MessageStatus
from models import CampaignEvent, Message
from services import db
from services.auth import Principal

MAX_PAGE = 100
MAX_TIMELINE_POINTS = 10_000


@dataclass
class Page:
    rows: list[Any]
    has_next: bool
    query: QuerySet[Any]

    async def total_count(self) -> int:
        return await self.query.count()


def _page_size(first: int | None, default: int, field: str = "first") -> int:
    size = default if first is None else first
    if size < 0:
        raise ValidationFailed(f"{field} must not be negative.", (field,))
    return min(size, MAX_PAGE)


async def _page(query: QuerySet[Any], first: int, after: str | None, descending: bool) -> Page:
    filtered = query
    if after is not None:
        last = decode_cursor(after)
        filtered = filtered.filter(id__lt=last) if descending else filtered.filter(id__gt=last)
    rows = await filtered.order_by("-id" if descending else "id").limit(first + 1)
    return Page(rows[:first], len(rows) > first, query)


@dataclass(frozen=True, slots=True)
class CampaignRow:
    """A campaign as the list reads it: plain values, no ORM object (building Tortoise
    models was half the cost of a campaigns page)."""

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
    failed: int
    cancelled: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


_ROW_FIELDS = [f for f in CampaignRow.__dataclass_fields__]
_COLUMNS = ", ".join(f'"{f}"' for f in _ROW_FIELDS)
_TIMES = {"scheduled_at", "created_at", "updated_at", "started_at", "completed_at"}


def _when(value: Any) -> datetime | None:
    # SQLite hands back ISO text; asyncpg hands back datetimes
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _campaign_row(raw: dict[str, Any]) -> CampaignRow:
    values = {f: raw[f] for f in _ROW_FIELDS}
    for f in _TIMES:
        values[f] = _when(values[f])
    values["status"] = CampaignStatus(values["status"])
    values["channel"] = Channel(values["channel"])
    return CampaignRow(**values)


@dataclass
class CampaignPage:
    rows: list[CampaignRow]
    has_next: bool
    where: str
    params: list[Any]

    async def total_count(self) -> int:
        sql = f"SELECT COUNT(*) AS n FROM campaign WHERE {self.where}"
        return int(await db.fetch_val(db.client(), sql, self.params) or 0)


async def list_campaigns(
    principal: Principal,
    first: int | None,
    after: str | None,
    statuses: list[CampaignStatus] | None,
    search: str | None,
) -> CampaignPage:
    """Newest first; `first` is capped at 100."""
    size = _page_size(first, 20)
    where = "workspace_id = ?"
    params: list[Any] = [principal.workspace_id]
    if statuses:
        where += f" AND status IN ({', '.join('?' for _ in statuses)})"
        params += [s.value for s in statuses]
    if search and search.strip():
        escaped = search.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where += " AND LOWER(name) LIKE ? ESCAPE '\\'"
        params.append(f"%{escaped}%")
    page_where, page_params = where, list(params)
    if after is not None:
        page_where += " AND id < ?"
        page_params.append(decode_cursor(after))
    rows = await db.fetch(
        db.client(),
        f"SELECT {_COLUMNS} FROM campaign WHERE {page_where} ORDER BY id DESC LIMIT ?",
        [*page_params, size + 1],
    )
    return CampaignPage([_campaign_row(r) for r in rows[:size]], len(rows) > size, where, params)


async def list_messages(
    campaign_id: int, first: int | None, after: str | None, statuses: list[MessageStatus] | None
) -> Page:
    query = Message.filter(campaign_id=campaign_id)
    if statuses:
        query = query.filter(status__in=statuses)
    return await _page(query, _page_size(first, 50), after, descending=False)


async def list_events(campaign_id: int) -> list[CampaignEvent]:
    return await CampaignEvent.filter(campaign_id=campaign_id).order_by("id")


async def failures_by_code(campaign_id: int) -> list[dict[str, Any]]:
    return await db.fetch(
        db.client(),
        "SELECT COALESCE(error_code, 'unknown') AS code, MAX(COALESCE(error_message, '')) AS message, "
        "COUNT(*) AS count FROM message WHERE campaign_id = ? AND status = 'FAILED' "
        "GROUP BY COALESCE(error_code, 'unknown') ORDER BY count DESC, code",
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
