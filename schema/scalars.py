"""Scalars of the contract: DateTime requires an offset; JSON is any JSON value.

A refused value raises ValidationFailed, a client's error: graphql-core wraps what a
scalar raises, and anything but a domain error would be masked as INTERNAL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import strawberry

from domain.errors import ValidationFailed


class InvalidScalar(ValidationFailed, ValueError):
    """A value the scalar refuses: the client's error (a ValueError, as graphql-core
    expects of scalars, and a domain error, so it is not masked)."""


def _serialize(value: datetime) -> str:
    if value.tzinfo is None:  # stored values are UTC; never emit an ambiguous time
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _parse(value: Any) -> datetime:
    if not isinstance(value, str):
        raise InvalidScalar("DateTime must be an ISO 8601 string with an offset.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidScalar(f"{value!r} is not an ISO 8601 date-time.") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidScalar(f"{value!r} has no UTC offset; add one, e.g. 2030-01-01T09:00:00+00:00 or ...Z.")
    return parsed.astimezone(UTC)


DateTime = strawberry.scalar(
    name="DateTime",
    description="ISO 8601 with an offset; input without an offset is rejected",
    serialize=_serialize,
    parse_value=_parse,
)

#: for StrawberryConfig.scalar_map: every `datetime` in the schema is this scalar
SCALAR_MAP: dict[object, Any] = {datetime: DateTime}
