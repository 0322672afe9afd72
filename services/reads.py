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
from domain.messages import MessageStatus
from models import Campaign, CampaignEvent, Message
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


async def list_campaigns(
    principal: Principal,
    first: int | None,
    after: str | None,
    statuses: list[CampaignStatus] | None,
    search: str | None,
) -> Page:
    """Newest first; `first` is capped at 100."""
    query = Campaign.filter(workspace_id=principal.workspace_id)
    if statuses:
        query = query.filter(status__in=statuses)
    if search and search.strip():
        query = query.filter(name__icontains=search.strip())
    return await _page(query, _page_size(first, 20), after, descending=True)


async def list_messages(
    campaign: Campaign, first: int | None, after: str | None, statuses: list[MessageStatus] | None
) -> Page:
    query = Message.filter(campaign_id=campaign.id)
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
