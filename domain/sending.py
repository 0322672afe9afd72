"""The sending pipeline's ports and rules: what a provider is, what its answers mean.

Pure: the worker depends on these Protocols (a provider, a store), never on a concrete
HTTP client or the ORM, as listmonk's manager depends on Store and Messenger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    ACCEPTED = "ACCEPTED"  # the provider took it: message SENT with a provider id
    TRANSIENT = "TRANSIENT"  # try again later (rate limit, pair rate, timeout, 5xx)
    PERMANENT = "PERMANENT"  # this message cannot be sent: FAILED with the code
    FATAL = "FATAL"  # nothing in this campaign can be sent: campaign FAILED


@dataclass(frozen=True, slots=True)
class SendRequest:
    message_id: int
    campaign_id: int
    phone: str  # E.164
    body: str  # rendered text (text messages)
    template_name: str | None = None
    template_language: str | None = None
    #: template body parameters, in placeholder order
    parameters: tuple[str, ...] = ()
    #: RETRY_FAILED rounds: each deliberate resend is a new send intent
    send_round: int = 0
    #: test messages carry their own key; campaign messages derive it from their id
    key: str | None = None

    @property
    def idempotency_key(self) -> str:
        """The message's own id (and send round): a resend after a crash carries the
        same key, so a provider that honours keys never delivers it twice."""
        if self.key is not None:
            return self.key
        return f"msg-{self.message_id}" + (f"-r{self.send_round}" if self.send_round else "")


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    #: seconds the provider asked us to wait (Retry-After), for TRANSIENT
    retry_after: float | None = None
    #: the request may have reached the provider (timeout, connection reset mid-request)
    ambiguous: bool = False


class Provider(Protocol):
    """Sends one message. Never raises for provider or network errors: they are results."""

    #: whether a resend with the same idempotency key is guaranteed not to send twice
    honours_idempotency: bool

    async def send(self, request: SendRequest) -> SendResult: ...

    async def close(self) -> None: ...


# WhatsApp Cloud API error codes and what they mean for us.
RATE_LIMIT = "130429"  # throughput tier exceeded
PAIR_RATE = "131056"  # too many messages to one recipient in a short time
TRANSIENT_CODES = frozenset({RATE_LIMIT, PAIR_RATE, "131000", "131016", "133004", "2", "4", "80007"})
#: the campaign cannot go on: bad token or permissions, rejected template
FATAL_CODES = frozenset(
    {
        "190",
        "0",
        "3",
        "10",
        "200",
        "131031",
        "132000",
        "132001",
        "132005",
        "132007",
        "132012",
        "132015",
        "132016",
    }
)
#: the recipient cannot receive it: the message fails, the campaign goes on
PERMANENT_CODES = frozenset(
    {
        "131026",
        "131047",
        "131049",
        "131050",
        "131051",
        "131052",
        "131053",
        "100",
        "131008",
        "131009",
        "131021",
    }
)


def classify(code: str | None, http_status: int | None = None) -> Outcome:
    """What an error means: by the provider's code first, then by the HTTP status."""
    if code in TRANSIENT_CODES:
        return Outcome.TRANSIENT
    if code in FATAL_CODES:
        return Outcome.FATAL
    if code in PERMANENT_CODES:
        return Outcome.PERMANENT
    if http_status is not None and (http_status >= 500 or http_status == 429):
        return Outcome.TRANSIENT
    if http_status in (401, 403):
        return Outcome.FATAL
    return Outcome.PERMANENT


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for transient errors; a message fails only when attempts run out."""

    max_attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    pair_rate_delay: float = 5.0  # WhatsApp asks for a pause per recipient on 131056

    def delay(self, attempt: int, result: SendResult) -> float:
        """Seconds to wait before attempt `attempt + 1` (attempt counts from 1)."""
        if result.retry_after is not None:
            return min(max(result.retry_after, 0.0), self.cap)
        if result.error_code == PAIR_RATE:
            return self.pair_rate_delay
        return min(self.cap, self.base * 2 ** (attempt - 1))


@dataclass(frozen=True, slots=True)
class Receipt:
    """A status the provider reports later (webhook)."""

    provider_message_id: str
    status: str  # sent | delivered | read | failed
    timestamp: int  # unix seconds
    message_id: int | None = None  # ours, from biz_opaque_callback_data when present
    error_code: str | None = None
    error_message: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


#: strength order of receipts: a weaker or equal one never moves a message backwards
RECEIPT_RANK = {"sent": 1, "delivered": 2, "read": 3}


def callback_data(campaign_id: int, message_id: int) -> str:
    """`biz_opaque_callback_data`: lets a receipt find its message even before the
    provider id is stored."""
    return f"c{campaign_id}:m{message_id}"


def parse_callback_data(value: str | None) -> tuple[int, int] | None:
    if not value or not value.startswith("c") or ":m" not in value:
        return None
    campaign, _, message = value[1:].partition(":m")
    try:
        return int(campaign), int(message)
    except ValueError:
        return None


# ------------------------------------------------------------------ the store port


@dataclass(frozen=True, slots=True)
class CampaignToSend:
    """What a run needs to know about its campaign, read once when the lease is taken."""

    id: int
    workspace_id: int
    body: str
    template_name: str | None
    template_language: str | None
    send_rate: int | None
    failure_threshold: float | None
    failure_sample_size: int


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message moved PENDING -> SENDING by this run; its variables are a dict."""

    id: int
    phone: str
    variables: dict[str, object]
    send_round: int = 0


@dataclass(frozen=True, slots=True)
class Recorded:
    """The outcome of one claimed message, written back in bulk.

    status SENT or FAILED resolves it; PENDING gives it back (never sent: paused or
    cancelled before its call started, or a fatal campaign error)."""

    message_id: int
    status: str  # SENT | FAILED | PENDING
    provider_message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    #: provider calls made beyond the one counted at claim time (retries), or -1 when
    #: the message goes back to PENDING without any call
    extra_attempts: int = 0


class SendingStore(Protocol):
    """The database as the send loop sees it. Every method is one short transaction."""

    async def acquire_lease(self, campaign_id: int, owner: str, ttl: float) -> CampaignToSend | None: ...

    async def renew_lease(self, campaign_id: int, owner: str, ttl: float) -> bool: ...

    async def release_lease(self, campaign_id: int, owner: str) -> None: ...

    async def recover_in_doubt(self, campaign_id: int, resend: bool) -> int: ...

    async def claim(self, campaign_id: int, owner: str, limit: int) -> list[Claimed]: ...

    async def record(self, campaign_id: int, outcomes: list[Recorded]) -> tuple[int, int]:
        """Write outcomes; return (sent, failed) resolved by this call."""
        ...

    async def unresolved(self, campaign_id: int) -> int:
        """Messages still PENDING or SENDING."""
        ...

    async def transition(self, campaign_id: int, action: str, actor: str, reason: str | None) -> bool: ...
