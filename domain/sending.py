"""The sending pipeline's ports and rules: what a provider is, what its answers mean.

Pure: the worker depends on these Protocols (a provider, a store), never on a concrete
HTTP client or the ORM, as listmonk's manager depends on Store and Messenger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from domain.delivery import DeliveryPlan
from domain.lifecycle import Action, CampaignStatus
from domain.senders import DailyLimit
from domain.waiting import WaitReason


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
    #: their names, for a NAMED template (sent as `parameter_name`)
    parameter_names: tuple[str, ...] = ()
    #: RETRY_FAILED rounds: each deliberate resend is a new send intent
    send_round: int = 0
    #: test messages carry their own key; campaign messages derive it from their id
    key: str | None = None

    @property
    def idempotency_key(self) -> str:
        """The message's own id (and send round): a resend after a crash carries the
        same key, so a provider that honours keys never delivers it twice. The WhatsApp
        Cloud API honours none (docs/STACK.md): there, reconciliation is what prevents
        a second send (see InDoubtPolicy)."""
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
#: the campaign cannot go on: bad token or permissions (104: no token; 100: the number
#: is not this token's, or does not exist), rejected template
FATAL_CODES = frozenset(
    {
        "100",
        "104",
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


class ReceiptStatus(StrEnum):
    """The statuses a receipt can move a message with (Meta's status webhooks)."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Receipt:
    """A status the provider reports later (webhook)."""

    provider_message_id: str
    #: a ReceiptStatus, or another status Meta sends that moves nothing (kept as text,
    #: so it is counted as unchanged instead of dropped unseen)
    status: ReceiptStatus | str
    timestamp: int  # unix seconds
    message_id: int | None = None  # ours, from biz_opaque_callback_data when present
    #: the send round of the request it is about (callback data); None when not stated
    send_round: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: the pricing category when the status says the message is billable
    #: (`pricing{billable: true, category}`); None when it says nothing or not billable
    billable_category: str | None = None
    #: the business number it is about (`metadata.phone_number_id`): a receipt moves
    #: only a message sent from that number (services/receipts.py)
    phone_number_id: str | None = None


#: strength order of receipts: a weaker or equal one never moves a message backwards
RECEIPT_RANK: dict[str, int] = {ReceiptStatus.SENT: 1, ReceiptStatus.DELIVERED: 2, ReceiptStatus.READ: 3}


@dataclass(frozen=True, slots=True)
class CallbackRef:
    """What `biz_opaque_callback_data` says about the request it was sent with."""

    campaign_id: int
    message_id: int
    #: None in the format written before rounds were carried ("c1:m2")
    send_round: int | None


def callback_data(campaign_id: int, message_id: int, send_round: int = 0) -> str:
    """`biz_opaque_callback_data` ("c<campaign>:m<message>:r<round>"): every status
    webhook echoes it, so a receipt finds its message even when the send's answer was
    lost, and a receipt of an earlier round never lands on a later resend."""
    return f"c{campaign_id}:m{message_id}:r{send_round}"


#: ids are 64-bit: a callback naming a larger one is not ours (and would fail the query)
_MAX_ID = 2**63 - 1


def parse_callback_data(value: str | None) -> CallbackRef | None:
    if not value or not value.startswith("c") or ":m" not in value:
        return None
    campaign, _, rest = value[1:].partition(":m")
    message, _, send_round = rest.partition(":r")
    try:
        ref = CallbackRef(int(campaign), int(message), int(send_round) if send_round else None)
    except ValueError:
        return None
    if not (0 < ref.campaign_id <= _MAX_ID and 0 < ref.message_id <= _MAX_ID and 0 <= (ref.send_round or 0) < 2**31):
        return None
    return ref


# ------------------------------------------------------------------ in-doubt messages

#: error_code of a message whose fate nobody knows: the call may have reached the provider
IN_DOUBT_CODE = "in_doubt"


class InDoubtPolicy(StrEnum):
    """What happens to an in-doubt message that no status webhook settled within the
    reconciliation window (a status carrying our callback data settles it at any time,
    before or after, with its provider id)."""

    #: back to PENDING and sent again, but only once receipts of this campaign were
    #: applied after it went in doubt (proof that statuses reach us); otherwise FAILED
    #: `in_doubt`. A cancelled campaign's in-doubt messages always fail `in_doubt`.
    RESEND = "resend"
    #: FAILED `in_doubt`: RETRY_FAILED resends it deliberately
    FAIL = "fail"


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
    #: the sender it sends from (None: the deployment's bootstrap sender)
    sender_id: int | None = None
    #: a NAMED template's parameter names, in order (the body's placeholders fill them
    #: one for one); empty for a POSITIONAL one or a free-text message
    template_parameter_names: tuple[str, ...] = ()
    #: when its messages may start: local time, send window (domain/delivery.py)
    delivery: DeliveryPlan = field(default_factory=DeliveryPlan)
    #: its sender's messaging limit (domain/senders.py), set by the worker from the
    #: sender; None: not limited
    daily_limit: DailyLimit | None = None


@dataclass(frozen=True, slots=True)
class Counts:
    """The campaign's status and the counters the failure guard reads (receipt failures
    included: they move `failed` on the campaign row)."""

    status: CampaignStatus
    sent: int
    failed: int


@dataclass(frozen=True, slots=True)
class Lease:
    """A run's hold on its campaign. `fence` grows with every acquisition: claims and
    outcomes written under an older fence cannot touch what a newer run claimed."""

    campaign: CampaignToSend
    owner: str
    fence: int
    #: the campaign's numbers when the lease was taken (the guard's baseline)
    counts: Counts


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message moved PENDING -> SENDING by this run; its variables are a dict."""

    id: int
    phone: str
    variables: dict[str, object]
    send_round: int = 0


class RecordedStatus(StrEnum):
    """What a run learnt about one claimed message."""

    SENT = "SENT"  # the provider accepted it
    FAILED = "FAILED"  # it cannot be sent (error code given)
    #: never reached the provider (no call started, or only refused ones): claim it again
    PENDING = "PENDING"
    #: the call may have reached the provider (timeout, reset): reconcile, never resend now
    IN_DOUBT = "IN_DOUBT"


@dataclass(frozen=True, slots=True)
class Recorded:
    """The outcome of one claimed message, written back in bulk under the run's fence."""

    message_id: int
    status: RecordedStatus
    provider_message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    #: provider calls made beyond the one counted at claim time (retries), or -1 when
    #: the message goes back to PENDING without any call
    extra_attempts: int = 0
    send_round: int = 0


@dataclass(frozen=True, slots=True)
class Written:
    """What one `record` call resolved, and the campaign's numbers after it."""

    sent: int
    failed: int
    counts: Counts | None


@dataclass(frozen=True, slots=True)
class Remaining:
    """A campaign's unresolved messages: PENDING ones that may be claimed now, SENDING
    ones (in flight or in doubt; `in_doubt` of them are waiting for reconciliation),
    and PENDING ones `waiting` for a later time (domain/waiting.py)."""

    pending: int
    sending: int
    in_doubt: int
    waiting: int = 0

    @property
    def unresolved(self) -> int:
        return self.pending + self.sending + self.waiting


@dataclass(frozen=True, slots=True)
class Reconciled:
    """In-doubt messages whose window passed: sent again, or failed `in_doubt`."""

    resent: int = 0
    failed: int = 0


class SendingStore(Protocol):
    """The database as the send loop sees it. Every method is one short transaction."""

    async def acquire_lease(self, campaign_id: int, owner: str, ttl: float) -> Lease | None:
        """Take the campaign's lease (QUEUED becomes PROCESSING) with a new fence, and put
        the SENDING messages of any earlier run in doubt; None if it is not sendable or
        someone else holds a live lease."""
        ...

    async def renew_lease(self, lease: Lease, ttl: float) -> Counts | None:
        """Extend the lease; None when it is gone (taken, released, or the campaign is
        no longer PROCESSING)."""
        ...

    async def release_lease(self, lease: Lease) -> None: ...

    async def claim(self, lease: Lease, limit: int, after: int = 0) -> list[Claimed]:
        """Move up to `limit` PENDING messages with an id above `after` to SENDING under
        the lease's fence, in id order; none unless the lease is still held and the
        campaign PROCESSING."""
        ...

    async def record(self, lease: Lease, outcomes: Sequence[Recorded]) -> Written:
        """Write outcomes of messages this lease claimed, with their counters."""
        ...

    async def reconcile(self, lease: Lease, window: float, policy: InDoubtPolicy) -> Reconciled:
        """Settle the campaign's in-doubt messages older than `window` seconds."""
        ...

    async def remaining(self, campaign_id: int) -> Remaining: ...

    async def zones(self, campaign_id: int) -> list[str | None]:
        """The time zones of the campaign's PENDING messages (None: unknown)."""
        ...

    async def hold(self, lease: Lease, holds: Mapping[str | None, tuple[datetime, WaitReason]], by_zone: bool) -> int:
        """Put the claimable PENDING messages of each zone (all of them when not
        `by_zone`) to wait until the given time, for the given reason; a message already
        waiting longer keeps its time. Only under the lease. How many were put to wait."""
        ...

    async def transition(self, campaign_id: int, action: Action, actor: str, reason: str | None) -> bool: ...
