"""Messages that wait: PENDING, but not to be sent before a time (`message.not_before`).

Claims skip them until then (services/sending_store.py). A campaign whose remaining
messages all wait stays PROCESSING, holds no worker lease (its run ends WAITING), and
shows why and until when (`status_reason`, `next_send_at`); the sweep queues its run
again once one is due (jobs/sweep.py). The one reason today is WhatsApp's per-user
marketing limit (131049); send windows and the daily messaging limit (issue 12) are
more reasons for the same mechanism: a time before which a message must not go out.
Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


class WaitReason(StrEnum):
    """Why a PENDING message waits (`message.wait_reason`, while `not_before` is ahead)."""

    #: WhatsApp's per-user marketing limit answered 131049
    MARKETING_LIMIT = "MARKETING_LIMIT"
    #: the campaign sends at a wall-clock time in each recipient's zone, not yet there
    LOCAL_TIME = "LOCAL_TIME"
    #: outside the campaign's send window (quiet hours)
    WINDOW = "WINDOW"
    #: the sender reached its daily messaging limit (unique recipients per moving 24 h)
    DAILY_LIMIT = "DAILY_LIMIT"


#: WhatsApp's "healthy ecosystem" limit on marketing messages one user receives: Meta
#: asks to wait, not to retry at once (docs/STACK.md: retry after 24 h or more)
MARKETING_LIMIT = "131049"

#: seconds a message waits after its n-th 131049 (n from 1): growing, then a day each time
DEFERRAL_SCHEDULE_S: tuple[int, ...] = (3600, 4 * 3600, 12 * 3600, 24 * 3600, 24 * 3600)


def deferral_s(deferrals: int) -> int | None:
    """Seconds to wait after a message's `deferrals + 1`-th 131049, or None when it has
    waited as often as the schedule allows (it then fails 131049; RETRY_FAILED can send
    it again later)."""
    if deferrals < 0 or deferrals >= len(DEFERRAL_SCHEDULE_S):
        return None
    return DEFERRAL_SCHEDULE_S[deferrals]


def waiting_reason(count: int, until: datetime) -> str:
    """A PROCESSING campaign's status reason while everything it has left waits."""
    people = "message waits" if count == 1 else "messages wait"
    return (
        f"{count:,} {people} for WhatsApp's per-user marketing limit (131049); "
        f"the next goes out at {until.strftime('%Y-%m-%d %H:%M')} UTC."
    )


def deferred_text(until: datetime, provider_text: str | None) -> str:
    """The error message of a message waiting after a 131049."""
    base = f"WhatsApp's per-user marketing limit (131049): retried at {until.strftime('%Y-%m-%d %H:%M')} UTC."
    return f"{base} (WhatsApp: {provider_text})" if provider_text else base
