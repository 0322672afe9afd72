"""domain/messages.py: the message states and channels of the contract, and which failure
codes RETRY_FAILED leaves alone, checked against how domain/sending.py classifies them.
Pure: no I/O."""

from __future__ import annotations

import pytest

from domain.messages import (
    FAILURE_TEXTS,
    GUIDED_CODES,
    MAX_VARIABLES_BYTES,
    OPTED_OUT_CODE,
    PERMANENT_RECIPIENT_ERRORS,
    Channel,
    MessageStatus,
    describe,
    failure_text,
)
from domain.sending import FATAL_CODES, IN_DOUBT_CODE, PERMANENT_CODES, TRANSIENT_CODES, Outcome, classify


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


def test_every_code_the_service_knows_has_its_plain_words() -> None:
    ours = {OPTED_OUT_CODE, IN_DOUBT_CODE, "invalid_recipient", "timeout", "connection_error", "bad_response"}
    assert TRANSIENT_CODES | FATAL_CODES | PERMANENT_CODES | ours <= set(FAILURE_TEXTS)
    assert all(text.endswith(".") and text[0].isupper() for text in FAILURE_TEXTS.values())


def test_the_codes_users_act_on_say_what_to_do() -> None:
    assert "template" in FAILURE_TEXTS["131047"] and "24 hours" in FAILURE_TEXTS["131047"]
    assert "not on WhatsApp" in FAILURE_TEXTS["131026"] and "Check the number" in FAILURE_TEXTS["131026"]
    assert "retried hours later" in FAILURE_TEXTS["131049"]
    assert "opt-out list" in FAILURE_TEXTS["131050"] and "removeOptOut" in FAILURE_TEXTS[OPTED_OUT_CODE]


def test_describe_falls_back_to_the_providers_words_then_to_the_code() -> None:
    assert describe("131047") == FAILURE_TEXTS["131047"]
    assert describe("999999", "Something Meta said") == "Something Meta said"
    assert describe("999999") == "WhatsApp error 999999."
    assert describe("http_502") == "The provider answered HTTP 502."
    assert describe(None) == describe("unknown") == "Failed for an unknown reason."


def test_a_guided_failure_stores_what_to_do_then_the_providers_words() -> None:
    assert GUIDED_CODES == {"131026", "131047", "131049", "131050"}
    assert (
        failure_text("131047", "Re-engagement message")
        == f"{FAILURE_TEXTS['131047']} (WhatsApp: Re-engagement message)"
    )
    assert failure_text("131047", None) == FAILURE_TEXTS["131047"]
    assert failure_text("131000", "Something went wrong") == "Something went wrong"  # not guided: as said
