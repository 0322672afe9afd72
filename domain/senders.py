"""Sender accounts, the pure part: what a connected WhatsApp sender is, the messaging
limit tiers, and the checks of what a user types in.

A sender is one business phone number of a WhatsApp Business Account (WABA): its
phone number id (the Cloud API's address for sending), the number people see, and the
access token that may send from it. Its throughput (messages per second) is shared by
every campaign and worker sending from it; its messaging-limit tier caps the unique
users it may message per moving 24 hours (issue 12 enforces that).
"""

from __future__ import annotations

from dataclasses import dataclass
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

    TIER_250 = "TIER_250"
    TIER_2K = "TIER_2K"
    TIER_10K = "TIER_10K"
    TIER_100K = "TIER_100K"
    TIER_UNLIMITED = "TIER_UNLIMITED"

    @property
    def unique_recipients(self) -> int | None:
        """Per moving 24 hours; None: no limit."""
        return _TIER_LIMITS[self]


_TIER_LIMITS: dict[Tier, int | None] = {
    Tier.TIER_250: 250,
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


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a send needs: where (the phone number id) and with which token."""

    phone_number_id: str
    access_token: str
    #: messages per second of this number, shared by all workers
    throughput: int


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
