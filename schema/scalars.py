"""Scalars of the contract: DateTime requires an offset; JSON is any JSON value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import strawberry


def _serialize(value: datetime) -> str:
    if value.tzinfo is None:  # stored values are UTC; never emit an ambiguous time
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _parse(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO 8601 string with an offset.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time.") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset; add one, e.g. 2030-01-01T09:00:00+00:00 or ...Z.")
    return parsed.astimezone(UTC)


DateTime = strawberry.scalar(
    name="DateTime",
    description="ISO 8601 with an offset; input without an offset is rejected",
    serialize=_serialize,
    parse_value=_parse,
)

#: for StrawberryConfig.scalar_map: every `datetime` in the schema is this scalar
SCALAR_MAP: dict[object, Any] = {datetime: DateTime}
