"""Live events as published on Redis: typed wire payloads.

They carry absolute numbers and the status, never deltas, so dropping or merging
events is always safe: the newest one (by `at`) is the whole truth at that moment.
"""

from __future__ import annotations

from typing import Literal, TypedDict


class StatsPayload(TypedDict):
    """One key per domain.stats.STAT_FIELDS, in its order."""

    total: int
    pending: int
    sent: int
    delivered: int
    read: int
    replied: int
    failed: int
    cancelled: int


class ProgressEvent(TypedDict):
    type: Literal["progress"]
    campaign_id: int
    workspace_id: int
    status: str
    version: int
    stats: StatsPayload
    #: unix seconds when the numbers were read from the database
    at: float


class StatusEvent(TypedDict):
    type: Literal["status"]
    campaign_id: int
    workspace_id: int
    name: str
    from_status: str | None
    to_status: str
    reason: str | None
    version: int
    at: float
