"""domain/inbound.py: what people send back, and the phone a WhatsApp id stands for."""

from __future__ import annotations

import pytest

from domain.inbound import REPLY_CLOCK_SLACK_S, InboundMessage, PreferenceChange, phone_of


@pytest.mark.parametrize(("wa_id", "phone"), [("14155550100", "+14155550100"), ("+447911123456", "+447911123456")])
def test_a_wa_id_is_the_phones_digits(wa_id: str, phone: str) -> None:
    assert phone_of(wa_id) == phone


@pytest.mark.parametrize("wa_id", ["", "abc", "12345", "0123456789", "1" * 16, "1415 555 0100"])
def test_what_cannot_be_a_phone_is_none(wa_id: str) -> None:
    assert phone_of(wa_id) is None


def test_events_are_plain_values() -> None:
    message = InboundMessage("100", "14155550100", "wamid.1", 1700000000, "text", "STOP")
    change = PreferenceChange("100", "14155550100", "marketing_messages", "stop", 1700000000)
    assert message.body == "STOP" and change.detail is None
    assert 0 < REPLY_CLOCK_SLACK_S <= 60  # a little clock skew, not a window
