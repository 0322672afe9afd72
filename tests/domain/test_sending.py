"""domain/sending.py and domain/lease.py: what answers mean, the backoff, callback data,
and the lease proof (the failure guard: test_guard.py). Pure: no I/O."""

from __future__ import annotations

import pytest

from domain.lease import MAX_PROOF_S, LeaseProof, LeaseTimes
from domain.sending import (
    CallbackRef,
    Outcome,
    RetryPolicy,
    SendResult,
    callback_data,
    classify,
    parse_callback_data,
)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("130429", 429, Outcome.TRANSIENT),
        ("131056", 400, Outcome.TRANSIENT),
        ("131000", 500, Outcome.TRANSIENT),
        ("190", 401, Outcome.FATAL),
        ("132001", 400, Outcome.FATAL),
        ("131026", 400, Outcome.PERMANENT),
        ("131050", 400, Outcome.PERMANENT),
        (None, 503, Outcome.TRANSIENT),
        (None, 429, Outcome.TRANSIENT),
        (None, 403, Outcome.FATAL),
        (None, 400, Outcome.PERMANENT),
        ("999999", 400, Outcome.PERMANENT),  # unknown codes: the message fails, not the campaign
    ],
)
def test_classify_by_code_first_then_by_status(code: str | None, status: int, expected: Outcome) -> None:
    assert classify(code, status) is expected


def test_retry_delays_double_are_capped_and_follow_retry_after() -> None:
    policy = RetryPolicy(base=0.5, cap=4.0, pair_rate_delay=5.0)
    plain = SendResult(Outcome.TRANSIENT, error_code="131000")
    assert [policy.delay(n, plain) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.delay(1, SendResult(Outcome.TRANSIENT, error_code="130429", retry_after=1.5)) == 1.5
    assert policy.delay(1, SendResult(Outcome.TRANSIENT, retry_after=60)) == 4.0  # capped
    assert policy.delay(1, SendResult(Outcome.TRANSIENT, error_code="131056")) == 5.0


def test_callback_data_carries_the_send_round_and_reads_the_older_format() -> None:
    assert callback_data(7, 42, 2) == "c7:m42:r2"
    assert parse_callback_data("c7:m42:r2") == CallbackRef(7, 42, 2)
    assert parse_callback_data("c7:m42") == CallbackRef(7, 42, None)  # written before rounds
    for foreign in (None, "", "order-17", "c7:mX", "c1:m99999999999999999999:r0", "c0:m1"):
        assert parse_callback_data(foreign) is None


def test_lease_times_trust_a_renewal_for_far_less_than_a_takeover_needs() -> None:
    times = LeaseTimes.for_ttl(15)
    assert times.proof == MAX_PROOF_S and times.renew_every == 1.0
    short = LeaseTimes.for_ttl(4)
    assert short.proof == pytest.approx(0.8) and short.renew_every < short.proof < short.ttl


def test_the_lease_proof_needs_both_clocks_inside_its_window() -> None:
    proof = LeaseProof(3.0)
    assert not proof.valid(0.0, 1000.0)  # nothing proved yet
    proof.renewed(10.0, 1000.0)
    assert proof.valid(12.9, 1002.9)
    assert not proof.valid(13.1, 1002.0)  # the monotonic clock ran out
    assert not proof.valid(11.0, 1003.5)  # a frozen VM: its wall clock was corrected
    proof.renewed(5.0, 990.0)  # an older renewal that answered late never shortens it
    assert proof.valid(12.9, 1002.9)
    assert proof.remaining(12.0) == pytest.approx(1.0)
