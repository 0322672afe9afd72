"""What people send back: inbound messages and marketing-preference changes, as read
from Meta's webhooks (providers/whatsapp.py parses them). Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

#: a reply counts for the latest message sent to its phone only if it was written after
#: that message was sent; Meta's timestamps are whole seconds and its clock is not ours,
#: so a reply stamped up to this many seconds before our `sent_at` still counts
REPLY_CLOCK_SLACK_S = 5


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """`value.messages[]`: someone wrote to the business number."""

    #: the business number it was sent to (`metadata.phone_number_id`)
    phone_number_id: str | None
    #: the sender's WhatsApp id: the phone's digits, no '+'
    wa_id: str
    message_id: str
    timestamp: int  # unix seconds
    #: text, button, image, ...
    kind: str
    #: the text of a `text` message; None for other kinds
    body: str | None = None


@dataclass(frozen=True, slots=True)
class PreferenceChange:
    """`value.user_preferences[]`: the user stopped or resumed a category of messages in
    WhatsApp itself."""

    phone_number_id: str | None
    wa_id: str
    category: str  # "marketing_messages"
    value: str  # "stop" | "resume"
    timestamp: int
    detail: str | None = None


Inbound = InboundMessage | PreferenceChange


def phone_of(wa_id: str) -> str | None:
    """The E.164 phone a wa_id stands for (as message.phone stores it), or None when
    it is not a plausible one."""
    digits = wa_id.strip().lstrip("+")
    if not digits.isdigit() or not 7 <= len(digits) <= 15 or digits[0] == "0":
        return None
    return "+" + digits
