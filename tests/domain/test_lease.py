"""domain/lease.py: LeaseTimes for any TTL and the edges of a LeaseProof's window
(tests/domain/test_sending.py has the basic cases). Pure: the clocks are passed in."""

from __future__ import annotations

import pytest

from domain.lease import MAX_PROOF_S, LeaseProof, LeaseTimes, StopConfirmation


def test_the_default_times_are_those_of_a_15_second_ttl() -> None:
    assert LeaseTimes() == LeaseTimes.for_ttl(15)


@pytest.mark.parametrize("ttl", [0.3, 1, 4, 15, 16, 60, 3600])
def test_a_run_renews_15_times_a_ttl_and_trusts_a_renewal_for_a_fifth_of_it_at_most(ttl: float) -> None:
    times = LeaseTimes.for_ttl(ttl)
    assert times.ttl == ttl
    assert times.proof == pytest.approx(min(MAX_PROOF_S, ttl / 5))
    assert times.proof <= MAX_PROOF_S  # what the API waits after an unacknowledged pause
    assert times.renew_every <= ttl / 15
    assert times.renew_every * 3 <= times.proof * (1 + 1e-9)  # three renewals inside every proof


def test_nothing_is_proved_before_the_first_renewal() -> None:
    proof = LeaseProof(3.0)
    assert proof.remaining(0.0) == float("-inf")
    assert not proof.valid(-1e9, -1e9)


def test_the_window_closes_exactly_at_its_end_on_either_clock() -> None:
    proof = LeaseProof(3.0)
    proof.renewed(10.0, 1000.0)
    assert proof.valid(12.999, 1002.999)
    assert not proof.valid(13.0, 1000.0)
    assert not proof.valid(10.0, 1003.0)


def test_each_clock_keeps_the_latest_end_it_was_given() -> None:
    proof = LeaseProof(3.0)
    proof.renewed(10.0, 1000.0)
    proof.renewed(12.0, 999.0)  # the wall clock was stepped back between the two renewals
    assert proof.valid(14.5, 1002.5)  # the monotonic end moved on to 15
    assert not proof.valid(14.5, 1003.0)  # the wall end stayed at 1003


def test_the_time_remaining_is_on_the_monotonic_clock_and_goes_negative() -> None:
    proof = LeaseProof(2.0)
    proof.renewed(100.0, 5.0)
    assert proof.remaining(100.5) == pytest.approx(1.5)
    assert proof.remaining(103.0) == pytest.approx(-1.0)


def test_stop_confirmations_have_distinct_wire_values() -> None:
    assert {c.value for c in StopConfirmation} == {"acknowledged", "lease-proof", "not-sending"}
    assert StopConfirmation("lease-proof") is StopConfirmation.LEASE_PROOF
