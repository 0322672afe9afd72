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
#: 131050 the user stopped marketing messages; `opted_out` is ours (the phone is on the
#: workspace's opt-out list, domain/optouts.py). (131047, outside the 24-hour window, and
#: 131049, Meta's per-user marketing limit, may succeed later, so they are retried.)
#: the error code of a message not sent because its phone is on the opt-out list
OPTED_OUT_CODE = "opted_out"
PERMANENT_RECIPIENT_ERRORS: frozenset[str] = frozenset({"invalid_recipient", OPTED_OUT_CODE, "131026", "131050"})

#: What each failure code means, in plain words, and what to do about it: THE table
#: (failuresByCode names codes with it; a stored error message of the codes in
#: GUIDED_CODES is this text, with the provider's own words after it).
FAILURE_TEXTS: dict[str, str] = {
    OPTED_OUT_CODE: (
        "Not sent: the phone is on the workspace's opt-out list (optOuts), and it is never retried. Remove "
        "it there (removeOptOut) only if the person asked to receive messages again."
    ),
    "invalid_recipient": "The phone number is not valid.",
    "in_doubt": (
        "The provider did not answer and no status came within the reconciliation window: it may or may "
        "not have been sent. RETRY_FAILED sends it again."
    ),
    "timeout": "The provider did not answer in time.",
    "connection_error": "The provider could not be reached.",
    "bad_response": "The provider's answer could not be read.",
    "0": "WhatsApp could not authenticate the app: check the access token.",
    "2": "The WhatsApp API was temporarily unavailable; retried with backoff.",
    "3": "The app lacks a capability or permission the request needs.",
    "4": "The app reached its API call rate limit; retried with backoff.",
    "10": "A permission the request needs was not granted, or was removed.",
    "200": "A permission the request needs was not granted, or was removed.",
    "80007": "The WhatsApp Business account reached its rate limit; retried with backoff.",
    "130429": "WhatsApp's throughput limit for the number was reached; retried with backoff.",
    "130472": "WhatsApp held this message back: the user is part of a Meta experiment.",
    "131000": "WhatsApp failed to send it for an unknown reason.",
    "131008": "The request missed a required parameter.",
    "131009": "A parameter value of the request is not valid.",
    "131016": "A WhatsApp service was temporarily unavailable.",
    "131021": "The recipient is the sender's own number.",
    "131026": (
        "Undeliverable: the number is not on WhatsApp, or its owner has not accepted WhatsApp's current "
        "terms, or uses an old app. Check the number with its owner; do not resend as is."
    ),
    "131031": "The WhatsApp Business account is locked or restricted.",
    "131047": (
        "More than 24 hours since the recipient last wrote to you: WhatsApp delivers free-form text only "
        "within 24 hours of their last message. Send an approved template instead (set templateName), or "
        "wait for them to write; RETRY_FAILED sends it again."
    ),
    "131049": (
        "WhatsApp's per-user limit on marketing messages: Meta chose not to deliver it now. It is retried "
        "hours later (1 h, then 4 h, 12 h, 24 h); fewer marketing messages to the same people avoid it."
    ),
    "131050": (
        "The recipient stopped marketing messages from your business in WhatsApp: the phone was added to "
        "the opt-out list, and it is not retried."
    ),
    "131051": "WhatsApp does not support this message type.",
    "131052": "WhatsApp could not download the media the user sent.",
    "131053": "WhatsApp could not upload the media of the message.",
    "131056": "Too many messages to this recipient in a short time (pair rate limit); retried with backoff.",
    "132000": "The number of parameters does not match the template's.",
    "132001": "The template does not exist in this language, or is not approved.",
    "132005": "The template's text is too long once its parameters are filled in.",
    "132007": "The template's content violates a WhatsApp policy.",
    "132012": "A template parameter is formatted incorrectly.",
    "132015": "The template is paused for low quality.",
    "132016": "The template is disabled.",
    "133004": "The WhatsApp server was temporarily unavailable; retried with backoff.",
    "190": "The WhatsApp access token is invalid or expired.",
    "100": "The sender's phone number id is wrong, or its token may not send from it: check the sender.",
    "104": "No access token was sent: the sender has none.",
}

#: codes whose stored error message starts with FAILURE_TEXTS' guidance: the provider's
#: own words say what happened, not what to do
GUIDED_CODES: frozenset[str] = frozenset({"131026", "131047", "131049", "131050"})


def describe(code: str | None, fallback: str | None = None) -> str:
    """A failure code in plain words: FAILURE_TEXTS', else `fallback` (the provider's
    text), else a generic line naming the code."""
    if code is not None and code in FAILURE_TEXTS:
        return FAILURE_TEXTS[code]
    if fallback:
        return fallback
    if code is None or code == "unknown":
        return "Failed for an unknown reason."
    if code.startswith("http_"):
        return f"The provider answered HTTP {code.removeprefix('http_')}."
    return f"WhatsApp error {code}."


def failure_text(code: str | None, provider_text: str | None) -> str | None:
    """The error message stored with a failure: for GUIDED_CODES what to do, then the
    provider's words; for the others the provider's words as they are."""
    if code not in GUIDED_CODES:
        return provider_text
    guidance = FAILURE_TEXTS[code]  # type: ignore[index]
    return f"{guidance} (WhatsApp: {provider_text})" if provider_text else guidance


#: Most recipient variables a message may carry (bytes of JSON): keeps rows small.
MAX_VARIABLES_BYTES = 4096
