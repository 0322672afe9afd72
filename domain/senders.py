"""Sender accounts, the pure part: what a connected WhatsApp sender is, the messaging
limit tiers, and the checks of what a user types in.

A sender is one business phone number of a WhatsApp Business Account (WABA): its
phone number id (the Cloud API's address for sending), the number people see, and the
access token that may send from it. Its throughput (messages per second) is shared by
every campaign and worker sending from it; its messaging-limit tier caps the unique
users it may message per moving 24 hours (`DailyLimit`; services/daily_limit.py keeps
the count, the sending store's claim applies it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from domain.errors import ValidationFailed

NAME_MAX = 200
#: Meta's default throughput is 80 msg/s per number, upgraded up to 1,000 (docs/STACK.md)
DEFAULT_THROUGHPUT = 80
MAX_THROUGHPUT = 1000
#: senders per workspace: each is a rate limiter and a webhook route
MAX_SENDERS = 50


class Tier(StrEnum):
    """Messaging limit: unique users per moving 24 h (Meta's names)."""

    #: TIER_50 and TIER_1K are older names, still in older payloads (docs/STACK.md):
    #: known, so that a number reported so is held to its own limit, not a default
    TIER_50 = "TIER_50"
    TIER_250 = "TIER_250"
    TIER_1K = "TIER_1K"
    TIER_2K = "TIER_2K"
    TIER_10K = "TIER_10K"
    TIER_100K = "TIER_100K"
    TIER_UNLIMITED = "TIER_UNLIMITED"

    @property
    def unique_recipients(self) -> int | None:
        """Per moving 24 hours; None: no limit."""
        return _TIER_LIMITS[self]


_TIER_LIMITS: dict[Tier, int | None] = {
    Tier.TIER_50: 50,
    Tier.TIER_250: 250,
    Tier.TIER_1K: 1_000,
    Tier.TIER_2K: 2_000,
    Tier.TIER_10K: 10_000,
    Tier.TIER_100K: 100_000,
    Tier.TIER_UNLIMITED: None,
}


def parse_tier(text: str | None) -> Tier | None:
    """Meta's tier name (also as it reads in `whatsapp_business_manager_messaging_limit`),
    or None when it is not one we know."""
    if not text:
        return None
    try:
        return Tier(text.strip().upper())
    except ValueError:
        return None


#: the messaging limit counts the unique recipients of this moving window
LIMIT_WINDOW = timedelta(hours=24)
#: A recipient counts here this much longer than at Meta: we note it when its message is
#: claimed, Meta when it accepts the send, a few seconds later (retries: a minute or
#: two). Without it, a slot would free here before it frees at Meta.
LIMIT_MARGIN = timedelta(minutes=5)
#: a campaign stopped by the limit waits at least this long, so its run does not churn
LIMIT_MIN_WAIT = timedelta(minutes=1)
#: a recipient noted further ahead of now than this does not count: the business clock
#: was moved back (tests, demos), not another worker's clock a little ahead
LIMIT_CLOCK_SKEW = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class DailyLimit:
    """A sender's messaging limit as a campaign run applies it: whose count (`key`, the
    phone number id, which also names the bootstrap sender that has no Sender row) and
    its tier. Every campaign and worker of that number shares the one count."""

    key: str
    tier: Tier

    @property
    def limit(self) -> int | None:
        """Unique recipients per moving 24 hours; None: not limited."""
        return self.tier.unique_recipients


@dataclass(frozen=True, slots=True)
class Admitted:
    """What a claim may take under the limit: the ids to claim (in id order) and how
    many candidates the limit refused."""

    ids: list[int]
    refused: int


def admit(candidates: Sequence[tuple[int, str]], open_phones: set[str], room: int) -> Admitted:
    """Of the next claimable messages, (id, phone) in id order: every one whose phone is
    already counted in the window (it does not count again), and new phones while the
    `room` left under the limit lasts."""
    ids: list[int] = []
    refused = 0
    counted = set(open_phones)
    for message_id, phone in candidates:
        if phone in counted:
            ids.append(message_id)
        elif room > 0:
            ids.append(message_id)
            counted.add(phone)  # the same phone twice in one claim counts once
            room -= 1
        else:
            refused += 1
    return Admitted(ids, refused)


def counted_since(now: datetime) -> datetime:
    """Recipients noted after this time count against the limit at `now`."""
    return now - LIMIT_WINDOW - LIMIT_MARGIN


def counted_until(now: datetime) -> datetime:
    """... and up to this time (see LIMIT_CLOCK_SKEW)."""
    return now + LIMIT_CLOCK_SKEW


def stops_counting(noted: datetime) -> datetime:
    """When a recipient noted at `noted` stops counting against the limit."""
    return noted + LIMIT_WINDOW + LIMIT_MARGIN


def frees_at(oldest: datetime | None, now: datetime) -> datetime:
    """When messages refused for the limit may be claimed again: when the oldest
    recipient in the window stops counting, at least LIMIT_MIN_WAIT from `now`."""
    earliest = now + LIMIT_MIN_WAIT
    if oldest is None:
        return earliest
    return max(stops_counting(oldest), earliest)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a send needs: where (the phone number id) and with which token."""

    phone_number_id: str
    access_token: str
    #: messages per second of this number, shared by all workers
    throughput: int
    #: its messaging limit, as last read from the Cloud API
    tier: Tier = Tier.TIER_250


def _digits(value: str, field: str, label: str) -> str:
    value = value.strip()
    if not value:
        raise ValidationFailed(f"{label} is required.", (field,))
    if not (value.isascii() and value.isdigit()) or len(value) > 32:
        raise ValidationFailed(f"{label} is the number Meta shows for it: digits only (up to 32).", (field,))
    return value


def check_phone_number_id(value: str, field: str = "phoneNumberId") -> str:
    return _digits(value, field, "phoneNumberId")


def check_waba_id(value: str, field: str = "wabaId") -> str:
    return _digits(value, field, "wabaId")


def check_name(value: str, field: str = "name") -> str:
    value = value.strip()
    if not value:
        raise ValidationFailed("A sender needs a name.", (field,))
    if len(value) > NAME_MAX:
        raise ValidationFailed(f"name is at most {NAME_MAX} characters.", (field,))
    return value


def check_token(value: str, field: str = "accessToken") -> str:
    value = value.strip()
    if not value:
        raise ValidationFailed(
            "accessToken is required (a system user token with whatsapp_business_messaging).", (field,)
        )
    if len(value) > 4096 or any(c.isspace() for c in value) or not value.isascii():
        raise ValidationFailed("accessToken is not a token (printable ASCII, no spaces).", (field,))
    return value


def check_throughput(value: int, field: str = "throughput") -> int:
    if not 1 <= value <= MAX_THROUGHPUT:
        raise ValidationFailed(f"throughput is 1 to {MAX_THROUGHPUT} messages per second.", (field,))
    return value
