"""The two live events, each built in one place: a campaign's numbers (`progress`) and a
change of its status (`status`). Absolute values, never deltas: dropping or merging
events is always safe, the newest one (by `at`) is the whole truth at that moment. The
payload types are domain/events.py's."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from domain.events import ProgressEvent, StatsPayload, StatusEvent
from domain.stats import STAT_FIELDS

#: the campaign columns a progress event is read from
COLUMNS = "id, workspace_id, status, version, " + ", ".join(f'"{f}"' for f in STAT_FIELDS)


def _value(status: Any) -> str:
    return str(getattr(status, "value", status))


def progress_event(row: Mapping[str, Any] | Any) -> ProgressEvent:
    """From a campaign row: a mapping read with COLUMNS, or a model."""
    get = row.__getitem__ if isinstance(row, Mapping) else row.__getattribute__
    stats: StatsPayload = {name: int(get(name)) for name in STAT_FIELDS}  # type: ignore[assignment,misc]
    return {
        "type": "progress",
        "campaign_id": int(get("id")),
        "workspace_id": int(get("workspace_id")),
        "status": _value(get("status")),
        "version": int(get("version")),
        "stats": stats,
        "at": time.time(),
    }


def status_event(
    *,
    campaign_id: int,
    workspace_id: int,
    name: str,
    from_status: Any,
    to_status: Any,
    reason: str | None,
    version: int,
    at: float | None = None,
) -> StatusEvent:
    """A status change, as published when it commits and as replayed after an outage."""
    return {
        "type": "status",
        "campaign_id": campaign_id,
        "workspace_id": workspace_id,
        "name": name,
        "from_status": _value(from_status) if from_status is not None else None,
        "to_status": _value(to_status),
        "reason": reason,
        "version": version,
        "at": time.time() if at is None else at,
    }
