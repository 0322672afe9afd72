"""simulator/wire.py: the Cloud API's shapes as Meta sends and answers them (docs/STACK.md):
the error envelope, the accepted answer, send-request validation, status objects, the
webhook body and its signature. Pure: bytes in, bytes out."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from domain.sending import FATAL_CODES, PERMANENT_CODES, TRANSIENT_CODES
from simulator.wire import (
    DOCS,
    ERRORS,
    BadRequest,
    SendMessage,
    TemplateParameter,
    accepted_body,
    change_body,
    error_body,
    error_info,
    inbound_text_value,
    is_transient,
    parse_send,
    pricing_object,
    signature,
    status_object,
    user_preferences_value,
    webhook_body,
)
from tests.simulator.conftest import template, text


def body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def refusal(payload: dict[str, Any] | bytes) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        parse_send(payload if isinstance(payload, bytes) else body(payload))
    return caught.value


# --- errors ----------------------------------------------------------------------------


def test_the_error_envelope_has_metas_fields_in_metas_order() -> None:
    error = json.loads(error_body(131026, fbtrace_id="Atrace"))
    assert error == {
        "error": {
            "message": "(#131026) Message undeliverable",
            "type": "OAuthException",
            "code": 131026,
            "error_data": {"messaging_product": "whatsapp", "details": ERRORS[131026].details},
            "fbtrace_id": "Atrace",
        }
    }
    assert list(error["error"]) == ["message", "type", "code", "error_data", "fbtrace_id"]


def test_the_error_envelope_is_compact_json() -> None:
    raw = error_body(131047)
    assert raw == json.dumps(json.loads(raw), separators=(",", ":")).encode()


def test_a_token_error_message_has_no_code_prefix() -> None:
    error = json.loads(error_body(190))["error"]
    assert error["message"] == "Invalid OAuth access token - Cannot parse access token"


def test_a_given_message_details_and_subcode_replace_the_tables() -> None:
    error = json.loads(error_body(100, message="Unsupported post request.", details="Unknown id.", subcode=33))["error"]
    assert error["message"] == "(#100) Unsupported post request."
    assert error["error_data"]["details"] == "Unknown id." and error["error_subcode"] == 33
    assert "error_subcode" not in json.loads(error_body(100))["error"]  # Meta sends none since v16.0


def test_an_unknown_code_is_a_400_with_a_generic_title() -> None:
    info = error_info(999999)
    assert (info.http_status, info.title, info.transient) == (400, "Error 999999", False)
    assert json.loads(error_body(999999))["error"]["message"] == "(#999999) Error 999999"


def test_auth_errors_are_401_permission_errors_403_and_the_throughput_limit_429() -> None:
    assert {code: ERRORS[code].http_status for code in (0, 190, 10, 200, 130429)} == {
        0: 401,
        190: 401,
        10: 403,
        200: 403,
        130429: 429,
    }
    assert all(ERRORS[code].http_status == 400 for code in (100, 131026, 131047, 131050, 132001))


def test_the_transient_codes_are_the_ones_the_service_retries() -> None:
    assert {str(code) for code, info in ERRORS.items() if info.transient} == TRANSIENT_CODES


def test_every_code_the_service_classifies_is_in_the_table() -> None:
    assert TRANSIENT_CODES | FATAL_CODES | PERMANENT_CODES <= {str(code) for code in ERRORS}


@pytest.mark.parametrize(
    ("code", "transient"), [("131056", True), ("130429", True), ("131026", False), ("999999", False), ("abc", False)]
)
def test_is_transient_reads_the_table_and_refuses_what_is_no_code(code: str, transient: bool) -> None:
    assert is_transient(code) is transient


# --- the accepted answer ---------------------------------------------------------------


def test_the_accepted_answer_echoes_the_input_and_names_the_wamid() -> None:
    answer = json.loads(accepted_body("+14155550100", "14155550100", "wamid.HBgLMTQxNTU1NTAxMDAVAgARGBI="))
    assert answer == {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "+14155550100", "wa_id": "14155550100"}],
        "messages": [{"id": "wamid.HBgLMTQxNTU1NTAxMDAVAgARGBI=", "message_status": "accepted"}],
    }


# --- send requests ---------------------------------------------------------------------


def test_a_text_request_is_parsed_into_what_the_simulator_acts_on() -> None:
    message = parse_send(body(text("+14155550100", body="Hi Ada", callback="c12:m34:r2")))
    assert message == SendMessage(
        to="+14155550100",
        wa_id="14155550100",
        kind="text",
        content="Hi Ada",
        callback_data="c12:m34:r2",
        campaign_id=12,
        message_id=34,
    )


def test_type_and_recipient_type_default_as_metas_do() -> None:
    payload = {"messaging_product": "whatsapp", "to": "14155550100", "text": {"body": "Hi"}}
    message = parse_send(body(payload))
    assert message.kind == "text" and message.callback_data is None and message.campaign_id is None


def test_a_template_request_is_keyed_by_name_language_and_parameter_texts() -> None:
    message = parse_send(body(template("14155550100", callback="c1:m2")))
    assert message.kind == "template" and message.content == "spring_sale\x1fen_US\x1fAda\x1f20%"
    other = template("14155550100")
    other["template"]["components"][0]["parameters"][0]["text"] = "Bob"
    assert parse_send(body(other)).content != message.content


@pytest.mark.parametrize("callback", ["order-77", "c1:mX", "cx:m1", "m1:c1", ""])
def test_callback_data_not_of_the_service_is_opaque_and_still_echoed(callback: str) -> None:
    message = parse_send(body(text("14155550100", callback=callback)))
    assert (message.campaign_id, message.message_id, message.callback_data) == (None, None, callback)


def test_callback_data_of_512_characters_is_fine_and_513_is_refused() -> None:
    assert parse_send(body(text("14155550100", callback="x" * 512))).callback_data == "x" * 512
    bad = refusal(text("14155550100", callback="c7:m1:r" + "0" * 506))
    assert bad.code == 100 and "biz_opaque_callback_data" in bad.details
    assert bad.campaign_id == 7  # the ledger still knows whose request it was


def test_a_text_body_of_4096_characters_is_fine_and_4097_is_refused() -> None:
    assert len(parse_send(body(text("14155550100", body="x" * 4096))).content) == 4096
    assert "at most 4096" in refusal(text("14155550100", body="x" * 4097)).details


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"recipient_type": "group"}, "recipient_type"),
        ({"to": "+1415"}, "to"),
        ({"to": 14155550100}, "to"),
        ({"text": {"body": ""}}, "text['body']"),
        ({"text": "Hi"}, "text"),
        ({"biz_opaque_callback_data": 17}, "biz_opaque_callback_data"),
    ],
)
def test_a_bad_text_request_is_refused_with_code_100_naming_the_field(change: dict[str, Any], named: str) -> None:
    bad = refusal(text("14155550100") | change)
    assert bad.code == 100 and named in bad.details and bad.message == bad.details


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"name": ""}, "template['name']"),
        ({"language": "en_US"}, "template['language']"),
        ({"language": {}}, "template['language']['code']"),
        ({"components": {"type": "body"}}, "template['components']"),
        ({"components": ["body"]}, "template['components'][0]['type']"),
        ({"components": [{"type": "body", "parameters": "Ada"}]}, "template['components'][0]['parameters']"),
        (
            {"components": [{"type": "body", "parameters": [{"type": "text"}]}]},
            "template['components'][0]['parameters'][0]['text']",
        ),
    ],
)
def test_a_bad_template_request_is_refused_with_code_100_naming_the_field(change: dict[str, Any], named: str) -> None:
    payload = template("14155550100", callback="c2:m5")
    payload["template"] |= change
    bad = refusal(payload)
    assert bad.code == 100 and named in bad.details and bad.campaign_id == 2


def test_a_template_request_keeps_its_parameters_for_the_wabas_check() -> None:
    """Whether the template exists is the engine's question (tests/simulator/test_template_api.py)."""
    payload = template("14155550100", name="bad_promo")
    payload["template"]["components"][0]["parameters"][1] = {
        "type": "currency",
        "parameter_name": "price",
        "currency": {"fallback_value": "$5", "code": "USD", "amount_1000": 5000},
    }
    request = parse_send(body(payload)).template
    assert request is not None and (request.name, request.language) == ("bad_promo", "en_US")
    assert request.components == (
        ("body", (TemplateParameter("text", "Ada", None), TemplateParameter("currency", "$5", "price"))),
    )


def test_a_named_parameter_must_be_a_string_and_a_currency_needs_its_fallback() -> None:
    named = template("14155550100")
    named["template"]["components"][0]["parameters"][0]["parameter_name"] = 7
    assert "['parameter_name']" in refusal(named).details
    money = template("14155550100")
    money["template"]["components"][0]["parameters"][0] = {"type": "currency", "currency": {"code": "USD"}}
    assert "['currency']['fallback_value']" in refusal(money).details


def test_a_body_that_is_not_a_json_object_is_refused() -> None:
    assert "not valid JSON" in refusal(b"\xff").details
    assert "must be a JSON object" in refusal(b'"text"').details


# --- statuses and webhooks -------------------------------------------------------------

PRICING = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}


def test_sent_and_delivered_statuses_carry_per_message_pricing_and_no_conversation() -> None:
    for status in ("sent", "delivered"):
        assert status_object("wamid.A", status, 1750857384, "14155550100", "c1:m2:r0") == {
            "id": "wamid.A",
            "status": status,
            "timestamp": "1750857384",
            "recipient_id": "14155550100",
            "pricing": PRICING,
            "biz_opaque_callback_data": "c1:m2:r0",
        }


def test_a_read_status_has_no_pricing_and_without_callback_data_no_such_field() -> None:
    assert status_object("wamid.A", "read", 1750857384, "14155550100", None) == {
        "id": "wamid.A",
        "status": "read",
        "timestamp": "1750857384",
        "recipient_id": "14155550100",
    }


def test_a_failed_status_carries_its_error_as_meta_reports_it() -> None:
    status = status_object("wamid.A", "failed", 1750857384, "14155550100", "c1:m2:r0", 131050)
    info = ERRORS[131050]
    assert "pricing" not in status
    assert status["errors"] == [
        {
            "code": 131050,
            "title": info.title,
            "message": info.title,  # Meta: the same value as the title
            "error_data": {"details": info.details},
            "href": DOCS,
        }
    ]


def test_a_webhook_body_is_one_entry_of_one_messages_change() -> None:
    statuses = [status_object("wamid.A", "sent", 1, "14155550100", None)]
    payload = json.loads(webhook_body("200000000000001", "15550000001", "100000000000001", statuses))
    assert payload == {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "200000000000001",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550000001", "phone_number_id": "100000000000001"},
                            "statuses": statuses,
                        },
                    }
                ],
            }
        ],
    }


def test_the_signature_is_hmac_sha256_of_the_raw_body_with_the_app_secret() -> None:
    raw = webhook_body("1", "2", "3", [])
    expected = hmac.new(b"app-secret", raw, hashlib.sha256).hexdigest()
    assert signature("app-secret", raw) == f"sha256={expected}"
    assert signature("other-secret", raw) != signature("app-secret", raw)
    assert signature("app-secret", raw + b" ") != signature("app-secret", raw)


def test_pricing_names_the_category_and_a_status_may_carry_none() -> None:
    utility = pricing_object("utility")
    assert utility == {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "utility"}
    assert status_object("wamid.A", "sent", 1, "14155550100", None, pricing=utility)["pricing"] == utility
    assert "pricing" not in status_object("wamid.A", "sent", 1, "14155550100", None, pricing=None)


def test_other_fields_are_one_change_with_the_numbers_metadata() -> None:
    value = user_preferences_value("14155550100", "stop", 1731705721, "marketing_messages", "Stop promotions")
    payload = json.loads(change_body("200000000000001", "15550000001", "100000000000001", "user_preferences", value))
    [entry] = payload["entry"]
    [change] = entry["changes"]
    assert (payload["object"], entry["id"], change["field"]) == (
        "whatsapp_business_account",
        "200000000000001",
        "user_preferences",
    )
    assert change["value"]["metadata"] == {"display_phone_number": "15550000001", "phone_number_id": "100000000000001"}
    assert change["value"]["user_preferences"] == [
        {
            "wa_id": "14155550100",
            "category": "marketing_messages",
            "value": "stop",
            "timestamp": 1731705721,
            "detail": "Stop promotions",
        }
    ]
    inbound = inbound_text_value("14155550100", "Ann", "wamid.IN", 1731705800, "STOP")
    assert inbound["messages"] == [
        {"from": "14155550100", "id": "wamid.IN", "timestamp": "1731705800", "type": "text", "text": {"body": "STOP"}}
    ]
    assert inbound["contacts"] == [{"profile": {"name": "Ann"}, "wa_id": "14155550100"}]
    assert "detail" not in user_preferences_value("1", "resume", 1, "marketing_messages", None)["user_preferences"][0]
