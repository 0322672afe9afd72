"""simulator/fate.py: every random decision about one send attempt, a function of the
seed, the key and the attempt alone. Pure: no I/O, no clock."""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any

from simulator.config import P99_3X_SIGMA, SimulatorConfig
from simulator.fate import ANSWERED, LOST, SLOW, Fate, attempt_seed, decide, make_wamid

KEYS = [f"msg-{i}" for i in range(300)]


def fast(**fields: Any) -> SimulatorConfig:
    """No lateness, no duplicates, no reordering unless asked: plain schedules to read."""
    base: dict[str, Any] = {
        "late_probability": 0.0,
        "duplicate_webhook_probability": 0.0,
        "out_of_order_probability": 0.0,
    }
    return SimulatorConfig(**(base | fields))


def outcome(fate: Fate) -> tuple[Any, ...]:
    """Everything but the answer fault and the posting schedule."""
    return (fate.wamid, fate.error, fate.final, fate.later_failure, [(s.status, s.event_s) for s in fate.statuses])


# --- identity --------------------------------------------------------------------------


def test_the_first_attempt_is_seeded_by_seed_and_key_and_retries_are_numbered() -> None:
    assert attempt_seed(7, "msg-1", 0) == "7:msg-1"
    assert attempt_seed(7, "msg-1", 3) == "7:msg-1#3"


def test_a_wamid_is_shaped_like_metas_and_names_one_attempt() -> None:
    wamid = make_wamid(1, "msg-1", 0)
    assert wamid.startswith("wamid.")
    assert len(base64.b64decode(wamid.removeprefix("wamid."), validate=True)) == 27
    assert make_wamid(1, "msg-1", 0) == wamid
    others = {make_wamid(2, "msg-1", 0), make_wamid(1, "msg-2", 0), make_wamid(1, "msg-1", 1)}
    assert wamid not in others and len(others) == 3


def test_the_same_seed_key_and_attempt_give_the_same_fate() -> None:
    config = SimulatorConfig(
        seed=9,
        latency_mean_ms=40,
        error_mix={"131026": 0.1},
        later_failure_mix={"131047": 0.1},
        duplicate_webhook_probability=0.2,
        out_of_order_probability=0.2,
        late_probability=0.2,
        lost_answer_probability=0.1,
        slow_answer_probability=0.1,
    )
    assert [decide(config, k, 0) for k in KEYS] == [decide(config, k, 0) for k in KEYS]
    retries = [decide(config, k, 1) for k in KEYS]
    assert all(r.wamid == make_wamid(9, k, 1) for k, r in zip(KEYS, retries, strict=True))
    assert [outcome(r) for r in retries] != [outcome(decide(config, k, 0)) for k in KEYS]


# --- outcomes --------------------------------------------------------------------------


def test_an_immediate_error_has_no_statuses_and_no_final() -> None:
    fate = decide(SimulatorConfig(error_mix={"131026": 1.0}), "msg-1", 0)
    assert fate.error == "131026" and fate.statuses == () and fate.final is None
    assert fate.later_failure is None and fate.answer == ANSWERED


def test_the_error_mix_is_drawn_in_proportion() -> None:
    config = SimulatorConfig(error_mix={"131026": 0.2, "131047": 0.1})
    errors = Counter(decide(config, f"k{i}", 0).error for i in range(4000))
    assert 0.17 < errors["131026"] / 4000 < 0.23 and 0.08 < errors["131047"] / 4000 < 0.12


def test_a_message_neither_delivered_nor_failed_gets_only_its_sent_status() -> None:
    fate = decide(fast(delivered_probability=0.0), "msg-1", 0)
    assert fate.final == "sent" and [s.status for s in fate.statuses] == ["sent"]
    assert decide(fast(delivered_probability=0.0, send_sent_status=False), "msg-1", 0).statuses == ()


def test_a_read_message_is_sent_then_delivered_then_read_within_the_configured_delays() -> None:
    config = fast(delivered_probability=1.0, read_probability=1.0)
    for key in KEYS:
        fate = decide(config, key, 0)
        assert fate.final == "read"
        sent, delivered, read = fate.statuses
        assert [sent.status, delivered.status, read.status] == ["sent", "delivered", "read"]
        assert all(s.post_s == s.event_s and s.error_code is None and not s.duplicate for s in fate.statuses)
        assert 0.05 <= sent.event_s <= 0.25
        assert max(sent.event_s, 0.3) <= delivered.event_s <= 2.0
        assert 1.0 <= read.event_s - delivered.event_s <= 5.0


def test_without_the_sent_status_delivered_and_read_still_come() -> None:
    fate = decide(fast(delivered_probability=1.0, read_probability=1.0, send_sent_status=False), "msg-1", 0)
    assert [s.status for s in fate.statuses] == ["delivered", "read"]


def test_a_later_failure_replaces_delivery_with_a_failed_status_carrying_its_code() -> None:
    fate = decide(fast(later_failure_mix={"131026": 1.0}, delivered_probability=1.0), "msg-1", 0)
    assert fate.final == "failed" and fate.later_failure == "131026" and fate.error is None
    sent, failed = fate.statuses
    assert (sent.status, failed.status, failed.error_code) == ("sent", "failed", 131026)
    assert failed.event_s >= sent.event_s


def test_delivered_and_read_probabilities_shape_the_finals() -> None:
    config = fast(delivered_probability=0.8, read_probability=0.5)
    finals = Counter(decide(config, f"k{i}", 0, plan=False).final for i in range(4000))
    assert 0.17 < finals["sent"] / 4000 < 0.23
    assert 0.37 < finals["read"] / 4000 < 0.43 and 0.37 < finals["delivered"] / 4000 < 0.43


# --- webhook faults --------------------------------------------------------------------


def test_a_duplicated_status_is_a_later_copy_of_one_of_the_message_statuses() -> None:
    config = fast(delivered_probability=1.0, read_probability=1.0, duplicate_webhook_probability=1.0)
    for key in KEYS[:50]:
        fate = decide(config, key, 0)
        assert fate.duplicated
        [copy] = [s for s in fate.statuses if s.duplicate]
        originals = [s for s in fate.statuses if not s.duplicate]
        [original] = [s for s in originals if s.status == copy.status]
        assert copy.event_s == original.event_s and copy.post_s > original.post_s
        assert [s.status for s in originals] == ["sent", "delivered", "read"]


def test_an_out_of_order_read_is_posted_before_delivered_which_keeps_its_true_timestamp() -> None:
    config = fast(delivered_probability=1.0, read_probability=1.0, out_of_order_probability=1.0)
    in_order = decide(fast(delivered_probability=1.0, read_probability=1.0), "msg-1", 0)
    fate = decide(config, "msg-1", 0)
    assert fate.out_of_order
    assert [s.status for s in fate.statuses] == ["sent", "read", "delivered"]  # in posting order
    by_status = {s.status: s for s in fate.statuses}
    assert by_status["delivered"].event_s == in_order.statuses[1].event_s < by_status["read"].event_s
    assert by_status["delivered"].post_s > by_status["read"].post_s


def test_only_a_read_message_can_come_out_of_order() -> None:
    fate = decide(fast(delivered_probability=1.0, read_probability=0.0, out_of_order_probability=1.0), "msg-1", 0)
    assert not fate.out_of_order and [s.status for s in fate.statuses] == ["sent", "delivered"]


def test_a_late_message_has_every_status_posted_later_by_one_delay_its_timestamps_unchanged() -> None:
    base = fast(delivered_probability=1.0, read_probability=1.0)
    late = fast(delivered_probability=1.0, read_probability=1.0, late_probability=1.0, late_delay_ms=(5000, 6000))
    on_time, delayed = decide(base, "msg-1", 0), decide(late, "msg-1", 0)
    assert delayed.late and not on_time.late
    shifts = {round(d.post_s - o.post_s, 9) for o, d in zip(on_time.statuses, delayed.statuses, strict=True)}
    [shift] = shifts
    assert 5.0 <= shift <= 6.0
    assert [s.event_s for s in delayed.statuses] == [s.event_s for s in on_time.statuses]


def test_statuses_are_in_posting_order() -> None:
    config = SimulatorConfig(duplicate_webhook_probability=0.5, out_of_order_probability=0.5, late_probability=0.5)
    for key in KEYS:
        posts = [s.post_s for s in decide(config, key, 0).statuses]
        assert posts == sorted(posts)


# --- answers and independence ----------------------------------------------------------


def test_answer_faults_are_drawn_by_their_probabilities() -> None:
    assert decide(SimulatorConfig(lost_answer_probability=1.0), "msg-1", 0).answer == LOST
    assert decide(SimulatorConfig(slow_answer_probability=1.0), "msg-1", 0).answer == SLOW
    config = SimulatorConfig(lost_answer_probability=0.25, slow_answer_probability=0.25)
    answers = Counter(decide(config, f"k{i}", 0).answer for i in range(4000))
    assert 0.22 < answers[LOST] / 4000 < 0.28 and 0.22 < answers[SLOW] / 4000 < 0.28


def test_answer_faults_and_lateness_change_no_other_decision_of_the_seed() -> None:
    plain = SimulatorConfig(seed=4, later_failure_mix={"131026": 0.1}, late_probability=0.0)
    faulty = SimulatorConfig(
        seed=4,
        later_failure_mix={"131026": 0.1},
        lost_answer_probability=0.3,
        slow_answer_probability=0.3,
        late_probability=0.5,
    )
    assert [outcome(decide(plain, k, 0)) for k in KEYS] == [outcome(decide(faulty, k, 0)) for k in KEYS]
    assert any(decide(faulty, k, 0).late for k in KEYS) and any(decide(faulty, k, 0).answer != ANSWERED for k in KEYS)


def test_the_latency_mean_shifts_no_later_draw() -> None:
    instant, slow = SimulatorConfig(seed=4), SimulatorConfig(seed=4, latency_mean_ms=120)
    assert [outcome(decide(instant, k, 0)) for k in KEYS] == [outcome(decide(slow, k, 0)) for k in KEYS]


def test_without_a_plan_the_outcome_is_the_same_and_nothing_is_scheduled() -> None:
    config = SimulatorConfig(
        seed=2, later_failure_mix={"131026": 0.2}, lost_answer_probability=0.2, duplicate_webhook_probability=0.3
    )
    for key in KEYS:
        planned, unplanned = decide(config, key, 0), decide(config, key, 0, plan=False)
        assert unplanned.statuses == () and not unplanned.duplicated and not unplanned.out_of_order
        assert (unplanned.wamid, unplanned.latency_s, unplanned.final, unplanned.later_failure, unplanned.answer) == (
            planned.wamid,
            planned.latency_s,
            planned.final,
            planned.later_failure,
            planned.answer,
        )


# --- latency ---------------------------------------------------------------------------


def test_latency_is_lognormal_with_the_configured_mean_and_p99_about_3x() -> None:
    config = SimulatorConfig(latency_mean_ms=50)
    samples = sorted(decide(config, f"k{i}", 0).latency_s for i in range(4000))
    mean = sum(samples) / len(samples)
    assert 0.045 < mean < 0.055
    assert 2.5 < samples[int(0.99 * len(samples))] / mean < 3.5
    assert SimulatorConfig().latency_jitter == P99_3X_SIGMA
    assert decide(SimulatorConfig(), "k", 0).latency_s == 0.0


def test_latency_without_jitter_is_the_mean_exactly() -> None:
    config = SimulatorConfig(latency_mean_ms=80, latency_jitter=0)
    assert {decide(config, k, 0).latency_s for k in KEYS} == {0.08}
