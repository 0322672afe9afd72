"""domain/waiting.py: how long a message waits after WhatsApp's per-user marketing
limit (131049), and what the campaign and the message say meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.sending import PERMANENT_CODES
from domain.waiting import (
    DEFERRAL_SCHEDULE_S,
    MARKETING_LIMIT,
    WaitGroup,
    WaitReason,
    deferral_s,
    deferred_text,
    waiting_reason,
)

AT = datetime(2030, 1, 2, 9, 30, tzinfo=UTC)


def test_waits_grow_to_a_day_and_then_stop() -> None:
    assert [deferral_s(n) for n in range(len(DEFERRAL_SCHEDULE_S))] == [3600, 14400, 43200, 86400, 86400]
    assert deferral_s(len(DEFERRAL_SCHEDULE_S)) is None and deferral_s(-1) is None
    assert list(DEFERRAL_SCHEDULE_S) == sorted(DEFERRAL_SCHEDULE_S)


def test_the_marketing_limit_is_a_code_the_provider_classifies_as_the_recipients() -> None:
    # the run records it as a failure; the store turns that failure into a wait
    assert MARKETING_LIMIT == "131049" and MARKETING_LIMIT in PERMANENT_CODES


def test_the_reason_says_how_many_and_until_when() -> None:
    one = WaitGroup(WaitReason.MARKETING_LIMIT, None, 1, AT)
    assert waiting_reason([one]) == (
        "Waiting until 09:30 UTC (2030-01-02) for 1 recipient: WhatsApp's per-user marketing limit (131049)."
    )


def test_the_reason_names_the_soonest_group_in_its_own_zone_and_the_whole_count() -> None:
    paris = WaitGroup(WaitReason.LOCAL_TIME, "Europe/Paris", 3120, datetime(2030, 1, 3, 8, 0, tzinfo=UTC))
    tokyo = WaitGroup(WaitReason.LOCAL_TIME, "Asia/Tokyo", 500, datetime(2030, 1, 4, 0, 0, tzinfo=UTC))
    assert waiting_reason([tokyo, paris]) == (
        "Waiting until 09:00 Europe/Paris (2030-01-03) for 3,120 recipients: their local send time. 3,620 wait in all."
    )


def test_recipients_of_unknown_zone_are_shown_in_the_campaigns_zone() -> None:
    window = WaitGroup(WaitReason.WINDOW, None, 7, datetime(2030, 1, 3, 14, 0, tzinfo=UTC))
    assert waiting_reason([window], "America/New_York").startswith("Waiting until 09:00 America/New_York (2030-01-03)")
    assert waiting_reason([window]).endswith("for 7 recipients: the send window.")


def test_a_waiting_message_says_when_it_is_retried_and_what_whatsapp_said() -> None:
    assert deferred_text(AT, "healthy ecosystem") == (
        "WhatsApp's per-user marketing limit (131049): retried at 2030-01-02 09:30 UTC. (WhatsApp: healthy ecosystem)"
    )
    assert deferred_text(AT, None).endswith("09:30 UTC.")
