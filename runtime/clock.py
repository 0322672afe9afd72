"""The business clock: the time every scheduling decision reads.

Scheduled starts, messages that wait (`message.not_before`), send windows, local-time
sending, the daily messaging limit's rolling 24 hours and recurring schedules all ask
`now()`, never `datetime.now()`. Tests move it (`advance`, `set_offset`) to cross days
and daylight-saving changes without sleeping; in production its offset is 0 and it is
the system clock.

Leases, lease proofs, webhook retries and request timing keep the real clock: they
measure elapsed time between processes, which a moved business clock must not
stretch (a test that jumps a day does not expire every lease at once).

Deferred arq jobs run on the real clock, so a job meant for a business time is
deferred by `real_delay(at)`; the sweep, which reads `now()`, wakes what such a job
would have woken if the clock was moved past it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_offset = 0.0


def now() -> datetime:
    """The business time, UTC-aware."""
    return datetime.now(UTC) + timedelta(seconds=_offset) if _offset else datetime.now(UTC)


def timestamp() -> float:
    """The business time as a Unix timestamp."""
    return time.time() + _offset


def offset() -> float:
    """Seconds the business clock is ahead of the system clock (0 in production)."""
    return _offset


def set_offset(seconds: float) -> None:
    """Put the business clock `seconds` ahead of the system clock (tests, demos)."""
    global _offset
    _offset = float(seconds)


def advance(seconds: float) -> datetime:
    """Move the business clock forward by `seconds`; the new time."""
    set_offset(_offset + seconds)
    return now()


def travel_to(at: datetime) -> None:
    """Set the business clock so that it reads `at` now."""
    set_offset((at - datetime.now(UTC)).total_seconds())


def real_delay(at: datetime) -> float:
    """Seconds of real time until the business clock reads `at` (0 if it already has)."""
    return max(0.0, (at - now()).total_seconds())
