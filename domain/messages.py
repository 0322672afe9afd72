"""Message states and what a failure code means for retrying."""

from __future__ import annotations

from enum import StrEnum


class MessageStatus(StrEnum):
    PENDING = "PENDING"
    SENDING = "SENDING"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    READ = "READ"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class Channel(StrEnum):
    WHATSAPP = "WHATSAPP"


#: Failures that are about the recipient itself: sending again cannot succeed, so
#: RETRY_FAILED leaves these messages failed. WhatsApp codes: 131026 undeliverable,
#: 131047 re-engagement window, 131049 ecosystem limit, 131050 user stopped marketing.
PERMANENT_RECIPIENT_ERRORS: frozenset[str] = frozenset({"invalid_recipient", "opted_out", "131026", "131050"})

#: Most recipient variables a message may carry (bytes of JSON): keeps rows small.
MAX_VARIABLES_BYTES = 4096
