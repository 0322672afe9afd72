"""Messages that wait: PENDING, but not to be sent before a time (`message.not_before`).

Claims skip them until then (services/sending_store.py). A campaign whose remaining
messages all wait stays PROCESSING, holds no worker lease (its run ends WAITING), and
shows why and until when (`status_reason`, `next_send_at`); the sweep queues its run
again once one is due (jobs/sweep.py). The reasons (`WaitReason`): WhatsApp's
per-user marketing limit (131049), a local send time not yet reached and a closed send
window (domain/delivery.py), the sender's daily messaging limit: each a time before
which a message must not go out.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.timezones import zone


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


#: what each reason is called in a status reason
REASON_TEXT: dict[WaitReason, str] = {
    WaitReason.MARKETING_LIMIT: "WhatsApp's per-user marketing limit (131049)",
    WaitReason.LOCAL_TIME: "their local send time",
    WaitReason.WINDOW: "the send window",
    WaitReason.DAILY_LIMIT: "the sender's daily messaging limit",
}


@dataclass(frozen=True, slots=True)
class WaitGroup:
    """Messages of a campaign that wait for one reason in one zone (None: unknown, the
    campaign's zone applies), and when the first of them may go out."""

    reason: WaitReason
    time_zone: str | None
    count: int
    until: datetime


def waiting_reason(groups: Sequence[WaitGroup], default_zone: str | None = None) -> str:
    """A PROCESSING campaign's status reason while everything it has left waits: the
    group that goes out first, in its own zone's wall-clock time, and the whole count;
    e.g. "Waiting until 09:00 Europe/Paris (2026-12-02) for 3,120 recipients: their
    local send time." """
    first = min(groups, key=lambda g: (g.until, g.count))
    zone_name = first.time_zone or default_zone or "UTC"
    local = first.until.astimezone(zone(zone_name))
    people = "recipient" if first.count == 1 else "recipients"
    text = (
        f"Waiting until {local:%H:%M} {zone_name} ({local:%Y-%m-%d}) for {first.count:,} {people}: "
        f"{REASON_TEXT[first.reason]}."
    )
    total = sum(g.count for g in groups)
    if total > first.count:
        text += f" {total:,} wait in all."
    return text


def deferred_text(until: datetime, provider_text: str | None) -> str:
    """The error message of a message waiting after a 131049."""
    base = f"WhatsApp's per-user marketing limit (131049): retried at {until.strftime('%Y-%m-%d %H:%M')} UTC."
    return f"{base} (WhatsApp: {provider_text})" if provider_text else base
