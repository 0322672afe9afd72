"""What a delivery receipt does to a message: pure rules, no I/O.

A receipt moves a message forward along SENDING -> SENT -> DELIVERED -> READ, or
fails an accepted-but-not-yet-delivered message; it never moves a message backwards.
The counter deltas follow docs/DESIGN.md, "Numbers": every message counts in exactly one of
pending (PENDING and SENDING), sent, failed, cancelled; `sent` includes delivered and
read, `delivered` includes read. So a delta is always the difference between the
counter vectors of the new and the old status (`counts_of`), and the table below is
written out so that it can be read and checked against that rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from domain.messages import MessageStatus
from domain.sending import IN_DOUBT_CODE, RECEIPT_RANK, ReceiptStatus

M = MessageStatus

SENT, DELIVERED, READ, FAILED = ReceiptStatus.SENT, ReceiptStatus.DELIVERED, ReceiptStatus.READ, ReceiptStatus.FAILED
RECEIPT_STATUSES = tuple(ReceiptStatus)


@dataclass(frozen=True, slots=True)
class Deltas:
    """How much each campaign counter moves."""

    pending: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0

    def __add__(self, other: Deltas) -> Deltas:
        return Deltas(
            self.pending + other.pending,
            self.sent + other.sent,
            self.delivered + other.delivered,
            self.read + other.read,
            self.failed + other.failed,
        )

    def __sub__(self, other: Deltas) -> Deltas:
        return Deltas(
            self.pending - other.pending,
            self.sent - other.sent,
            self.delivered - other.delivered,
            self.read - other.read,
            self.failed - other.failed,
        )

    def __bool__(self) -> bool:
        return bool(self.pending or self.sent or self.delivered or self.read or self.failed)


NO_CHANGE = Deltas()


@dataclass(frozen=True, slots=True)
class ReceiptTransition:
    status: MessageStatus  # the message's new status
    deltas: Deltas
    #: timestamp columns to set to the receipt's time, each only when still empty
    timestamps: tuple[str, ...]


def _t(status: MessageStatus, timestamps: tuple[str, ...], **deltas: int) -> ReceiptTransition:
    return ReceiptTransition(status, Deltas(**deltas), timestamps)


# An accepted message gets sent_at even when the worker had not yet written it (a
# receipt that overtook the worker), and read implies delivered: so those columns are
# filled too when empty.
TABLE: dict[tuple[MessageStatus, str], ReceiptTransition] = {
    (M.SENDING, SENT): _t(M.SENT, ("sent_at",), pending=-1, sent=1),
    (M.SENDING, DELIVERED): _t(M.DELIVERED, ("sent_at", "delivered_at"), pending=-1, sent=1, delivered=1),
    (M.SENT, DELIVERED): _t(M.DELIVERED, ("delivered_at",), delivered=1),
    (M.SENDING, READ): _t(M.READ, ("sent_at", "delivered_at", "read_at"), pending=-1, sent=1, delivered=1, read=1),
    (M.SENT, READ): _t(M.READ, ("delivered_at", "read_at"), delivered=1, read=1),
    (M.DELIVERED, READ): _t(M.READ, ("delivered_at", "read_at"), read=1),
    (M.SENDING, FAILED): _t(M.FAILED, ("failed_at",), pending=-1, failed=1),
    (M.SENT, FAILED): _t(M.FAILED, ("failed_at",), sent=-1, failed=1),
}


def transition(current: MessageStatus, receipt_status: str) -> ReceiptTransition | None:
    """The effect of one receipt on a message in `current`; None when it changes nothing
    (a duplicate, a late or weaker event, an unknown receipt status, a message that is
    PENDING, FAILED or CANCELLED, a failure reported after delivery)."""
    return TABLE.get((current, receipt_status))


def counts_of(status: MessageStatus) -> Deltas:
    """The counters one message in `status` contributes to its campaign."""
    return _COUNTS[status]


_COUNTS = {
    M.PENDING: Deltas(pending=1),
    M.SENDING: Deltas(pending=1),
    M.SENT: Deltas(sent=1),
    M.DELIVERED: Deltas(sent=1, delivered=1),
    M.READ: Deltas(sent=1, delivered=1, read=1),
    M.FAILED: Deltas(failed=1),
    M.CANCELLED: Deltas(),  # `cancelled` never moves with a receipt
}

_FAILED_LAST = max(RECEIPT_RANK.values()) + 1


def strength(receipt_status: str) -> int:
    """Sort key for one message's receipts within a batch: weakest first, failed last,
    unknown statuses first (they change nothing anyway)."""
    if receipt_status == FAILED:
        return _FAILED_LAST
    return RECEIPT_RANK.get(receipt_status, 0)


@dataclass(frozen=True, slots=True)
class Folded:
    """Several receipts for one message applied in order of strength."""

    status: MessageStatus  # final status (unchanged if nothing applied)
    deltas: Deltas
    applied: int  # receipts that changed the status
    unchanged: int  # receipts that did not
    #: column -> index (into the receipts given) of the receipt whose time it takes
    timestamps: dict[str, int]
    #: index of the receipt that failed the message, if one did
    failed_by: int | None


def belongs(receipt_round: int | None, receipt_pid: str, row_round: int, row_pid: str | None) -> bool:
    """Whether a receipt is about the send a message row stands for now. A receipt of an
    earlier send round (RETRY_FAILED made a new one) or of another provider message (a
    second copy that a resend made) is about a send the row no longer tracks."""
    if receipt_round is not None and receipt_round != row_round:
        return False
    return row_pid is None or row_pid == receipt_pid


def fold_start(status: MessageStatus, error_code: str | None, provider_message_id: str | None) -> MessageStatus:
    """The status a message's receipts fold from. A message whose accepted send was
    never recorded waits for exactly these receipts and folds as SENDING would: PENDING
    without a provider id (in doubt, put back for a resend) and FAILED `in_doubt` (no
    status came within the reconciliation window; one coming later still settles it)."""
    if provider_message_id is None and (status is M.PENDING or (status is M.FAILED and error_code == IN_DOUBT_CODE)):
        return M.SENDING
    return status


def fold(current: MessageStatus, receipt_statuses: Iterable[str], *, counted_as: MessageStatus | None = None) -> Folded:
    """Apply a message's receipts from one batch, strongest last: a batch holding
    read-then-delivered ends READ; failed counts only if nothing stronger came first.
    `counted_as`: the status the message is counted in now, when it folds from another
    (fold_start); the deltas are taken from it."""
    statuses = list(receipt_statuses)
    order = sorted(range(len(statuses)), key=lambda i: strength(statuses[i]))
    status = current
    applied = 0
    stamps: dict[str, int] = {}
    failed_by: int | None = None
    for i in order:
        step = TABLE.get((status, statuses[i]))
        if step is None:
            continue
        applied += 1
        status = step.status
        for column in step.timestamps:
            stamps.setdefault(column, i)
        if status is M.FAILED:
            failed_by = i
    return Folded(
        status=status,
        deltas=counts_of(status) - counts_of(counted_as or current),
        applied=applied,
        unchanged=len(statuses) - applied,
        timestamps=stamps,
        failed_by=failed_by,
    )
