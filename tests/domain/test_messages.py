"""domain/messages.py: the message states and channels of the contract, and which failure
codes RETRY_FAILED leaves alone, checked against how domain/sending.py classifies them.
Pure: no I/O."""

from __future__ import annotations

import pytest

from domain.messages import MAX_VARIABLES_BYTES, PERMANENT_RECIPIENT_ERRORS, Channel, MessageStatus
from domain.sending import FATAL_CODES, TRANSIENT_CODES, Outcome, classify


def test_the_states_and_channels_are_the_contracts_in_its_order() -> None:
    # docs/contract.graphql: enum MessageStatus { PENDING SENDING SENT DELIVERED READ FAILED CANCELLED }
    assert [s.value for s in MessageStatus] == [
        "PENDING",
        "SENDING",
        "SENT",
        "DELIVERED",
        "READ",
        "FAILED",
        "CANCELLED",
    ]
    assert [c.value for c in Channel] == ["WHATSAPP"]


def test_a_status_is_its_stored_string() -> None:
    assert MessageStatus("SENT") is MessageStatus.SENT
    assert MessageStatus.SENT == "SENT" and f"{MessageStatus.READ}" == "READ"
    with pytest.raises(ValueError):
        MessageStatus("sent")


@pytest.mark.parametrize("code", sorted(c for c in PERMANENT_RECIPIENT_ERRORS if c.isdigit()))
def test_a_permanent_recipient_code_fails_the_message_not_the_campaign(code: str) -> None:
    assert classify(code, 400) is Outcome.PERMANENT


@pytest.mark.parametrize("code", ["131047", "131049"])
def test_codes_that_may_succeed_later_are_retried(code: str) -> None:
    assert classify(code, 400) is Outcome.PERMANENT  # the message failed this time
    assert code not in PERMANENT_RECIPIENT_ERRORS  # but RETRY_FAILED sends it again


def test_no_transient_or_fatal_code_is_held_against_the_recipient() -> None:
    assert not PERMANENT_RECIPIENT_ERRORS & (TRANSIENT_CODES | FATAL_CODES)
    assert {"invalid_recipient", "opted_out"} <= PERMANENT_RECIPIENT_ERRORS


def test_the_variables_limit_is_four_kilobytes() -> None:
    assert MAX_VARIABLES_BYTES == 4096
