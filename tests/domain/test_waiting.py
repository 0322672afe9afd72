"""domain/waiting.py: how long a message waits after WhatsApp's per-user marketing
limit (131049), and what the campaign and the message say meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.sending import PERMANENT_CODES
from domain.waiting import DEFERRAL_SCHEDULE_S, MARKETING_LIMIT, deferral_s, deferred_text, waiting_reason

AT = datetime(2030, 1, 2, 9, 30, tzinfo=UTC)


def test_waits_grow_to_a_day_and_then_stop() -> None:
    assert [deferral_s(n) for n in range(len(DEFERRAL_SCHEDULE_S))] == [3600, 14400, 43200, 86400, 86400]
    assert deferral_s(len(DEFERRAL_SCHEDULE_S)) is None and deferral_s(-1) is None
    assert list(DEFERRAL_SCHEDULE_S) == sorted(DEFERRAL_SCHEDULE_S)


def test_the_marketing_limit_is_a_code_the_provider_classifies_as_the_recipients() -> None:
    # the run records it as a failure; the store turns that failure into a wait
    assert MARKETING_LIMIT == "131049" and MARKETING_LIMIT in PERMANENT_CODES


def test_the_reason_says_how_many_and_until_when() -> None:
    assert waiting_reason(1, AT) == (
        "1 message waits for WhatsApp's per-user marketing limit (131049); the next goes out at 2030-01-02 09:30 UTC."
    )
    assert waiting_reason(3120, AT).startswith("3,120 messages wait")


def test_a_waiting_message_says_when_it_is_retried_and_what_whatsapp_said() -> None:
    assert deferred_text(AT, "healthy ecosystem") == (
        "WhatsApp's per-user marketing limit (131049): retried at 2030-01-02 09:30 UTC. (WhatsApp: healthy ecosystem)"
    )
    assert deferred_text(AT, None).endswith("09:30 UTC.")
