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
#: 131050 the user stopped marketing messages. (131047, outside the 24-hour window, and
#: 131049, Meta's per-user marketing limit, may succeed later, so they are retried.)
PERMANENT_RECIPIENT_ERRORS: frozenset[str] = frozenset({"invalid_recipient", "opted_out", "131026", "131050"})

#: Most recipient variables a message may carry (bytes of JSON): keeps rows small.
MAX_VARIABLES_BYTES = 4096
