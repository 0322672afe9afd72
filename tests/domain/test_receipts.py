"""domain.receipts: every message status x every receipt status."""

from __future__ import annotations

import pytest

from domain.messages import MessageStatus
from domain.receipts import (
    NO_CHANGE,
    RECEIPT_STATUSES,
    Deltas,
    counts_of,
    fold,
    strength,
    transition,
)

M = MessageStatus
D = Deltas

# (current, receipt) -> (new status, deltas, timestamps); anything absent: no change
EXPECTED = {
    (M.SENDING, "sent"): (M.SENT, D(pending=-1, sent=1), ("sent_at",)),
    (M.SENDING, "delivered"): (M.DELIVERED, D(pending=-1, sent=1, delivered=1), ("sent_at", "delivered_at")),
    (M.SENDING, "read"): (
        M.READ,
        D(pending=-1, sent=1, delivered=1, read=1),
        ("sent_at", "delivered_at", "read_at"),
    ),
    (M.SENDING, "failed"): (M.FAILED, D(pending=-1, failed=1), ("failed_at",)),
    (M.SENT, "delivered"): (M.DELIVERED, D(delivered=1), ("delivered_at",)),
    (M.SENT, "read"): (M.READ, D(delivered=1, read=1), ("delivered_at", "read_at")),
    (M.SENT, "failed"): (M.FAILED, D(sent=-1, failed=1), ("failed_at",)),
    (M.DELIVERED, "read"): (M.READ, D(read=1), ("delivered_at", "read_at")),
}
CASES = [(s, r) for s in M for r in (*RECEIPT_STATUSES, "deleted", "warning", "")]


@pytest.mark.parametrize(("current", "receipt"), CASES, ids=[f"{s.value}-{r or 'empty'}" for s, r in CASES])
def test_every_status_and_receipt(current: MessageStatus, receipt: str) -> None:
    step = transition(current, receipt)
    expected = EXPECTED.get((current, receipt))
    if expected is None:
        assert step is None
        return
    assert step is not None
    status, deltas, timestamps = expected
    assert (step.status, step.deltas, step.timestamps) == (status, deltas, timestamps)
    # the funnel rule: a delta is the difference of the two statuses' counter vectors
    assert step.deltas == counts_of(step.status) - counts_of(current)


ORDER = [M.PENDING, M.SENDING, M.SENT, M.DELIVERED, M.READ]


@pytest.mark.parametrize(("current", "receipt"), CASES)
def test_never_backwards(current: MessageStatus, receipt: str) -> None:
    step = transition(current, receipt)
    if step is None:
        return
    if step.status is M.FAILED:
        assert current in (M.SENDING, M.SENT)  # never after delivery
    else:
        assert ORDER.index(step.status) > ORDER.index(current)


def test_deltas_arithmetic() -> None:
    assert not NO_CHANGE
    assert D(sent=1) + D(sent=-1, failed=1) == D(failed=1)
    assert D(read=1) - D(read=1) == NO_CHANGE
    assert bool(D(failed=-1))


def test_strength_failed_last() -> None:
    assert [*sorted(["failed", "read", "sent", "delivered"], key=strength)] == [
        "sent",
        "delivered",
        "read",
        "failed",
    ]


@pytest.mark.parametrize(
    ("current", "receipts", "status", "deltas", "applied"),
    [
        (M.SENT, ["read", "delivered"], M.READ, D(delivered=1, read=1), 2),
        (M.SENT, ["delivered", "delivered"], M.DELIVERED, D(delivered=1), 1),
        (M.SENDING, ["failed", "sent"], M.FAILED, D(pending=-1, failed=1), 2),
        (M.SENDING, ["failed", "delivered"], M.DELIVERED, D(pending=-1, sent=1, delivered=1), 1),
        (M.DELIVERED, ["failed", "sent"], M.DELIVERED, NO_CHANGE, 0),
        (M.READ, ["read", "delivered", "sent"], M.READ, NO_CHANGE, 0),
        (M.PENDING, ["sent", "read"], M.PENDING, NO_CHANGE, 0),
        (M.CANCELLED, ["failed"], M.CANCELLED, NO_CHANGE, 0),
        (M.SENDING, ["read", "sent", "delivered"], M.READ, D(pending=-1, sent=1, delivered=1, read=1), 3),
    ],
)
def test_fold(current: MessageStatus, receipts: list[str], status: MessageStatus, deltas: Deltas, applied: int) -> None:
    folded = fold(current, receipts)
    assert (folded.status, folded.deltas, folded.applied) == (status, deltas, applied)
    assert folded.unchanged == len(receipts) - applied


def test_fold_timestamps_come_from_the_receipt_that_implied_them() -> None:
    # indexes into the list given: read (0) is applied after delivered (1)
    folded = fold(M.SENT, ["read", "delivered"])
    assert folded.timestamps == {"delivered_at": 1, "read_at": 0}
    assert folded.failed_by is None
    failed = fold(M.SENDING, ["failed", "sent"])
    assert failed.timestamps == {"sent_at": 1, "failed_at": 0}
    assert failed.failed_by == 0
