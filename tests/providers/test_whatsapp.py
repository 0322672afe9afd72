"""WhatsAppProvider against a tiny Cloud API stand-in served on loopback: the request
it sends, and every kind of answer mapped to a SendResult."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from domain.inbound import InboundMessage, PreferenceChange
from domain.sending import Outcome, SendRequest, SendResult, classify
from providers.whatsapp import (
    WhatsAppProvider,
    build_payload,
    parse_inbound,
    parse_status_webhook,
    signature,
    verify_signature,
)
from tests.conftest import serve
from tests.processes import free_port

PHONE_ID = "100000000000001"
TOKEN = "test-token"


def error(code: int, message: str, details: str, status: int = 400, **headers: str) -> Response:
    body = {
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class CloudApi:
    """Answers by the recipient number (`to`); records what it received."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def messages(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.requests.append({"path": request.url.path, "headers": dict(request.headers), "body": body})
        to = body.get("to", "")
        if to.endswith("0026"):
            return error(131026, "Message undeliverable", "Recipient is not a WhatsApp user")
        if to.endswith("0429"):
            return error(
                130429,
                "Rate limit hit",
                "Cloud API message throughput has been reached.",
                400,
                **{"Retry-After": "7"},
            )
        if to.endswith("0190"):
            return error(190, "Invalid OAuth access token - Cannot parse access token", "", 401)
        if to.endswith("0503"):
            return PlainTextResponse("upstream unavailable", status_code=503)
        if to.endswith("0500"):
            return error(131000, "Something went wrong", "Unknown error", 500)
        if to.endswith("0200"):
            return JSONResponse({"messaging_product": "whatsapp"})  # no message id
        if to.endswith("0999"):
            await asyncio.sleep(2.0)  # beyond the provider timeout (1 s)
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": f"wamid.{request.headers.get('idempotency-key')}"}],
            }
        )


@pytest_asyncio.fixture(scope="module")
async def cloud() -> AsyncIterator[CloudApi]:
    api = CloudApi()
    app = Starlette(routes=[Route("/v21.0/{phone_id}/messages", api.messages, methods=["POST"])])
    async with serve(app) as url:
        api.url = url
        yield api


@pytest_asyncio.fixture
async def provider(cloud: CloudApi) -> AsyncIterator[WhatsAppProvider]:
    p = WhatsAppProvider(cloud.url, "v21.0", PHONE_ID, TOKEN, concurrency=50, timeout_s=1.0)
    yield p
    await p.close()


def req(phone: str = "+14155550001", message_id: int = 42, **kw: Any) -> SendRequest:
    return SendRequest(message_id=message_id, campaign_id=7, phone=phone, body="Hi Ann, 20% off today.", **kw)


async def test_text_message_request_format(cloud: CloudApi, provider: WhatsAppProvider) -> None:
    result = await provider.send(req())
    assert result == SendResult(Outcome.ACCEPTED, provider_message_id="wamid.msg-42")
    seen = cloud.requests[-1]
    assert seen["path"] == f"/v21.0/{PHONE_ID}/messages"
    assert seen["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert seen["headers"]["idempotency-key"] == "msg-42"
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["body"] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "14155550001",
        "biz_opaque_callback_data": "c7:m42:r0",
        "type": "text",
        "text": {"body": "Hi Ann, 20% off today.", "preview_url": False},
    }


async def test_template_request_format(cloud: CloudApi, provider: WhatsAppProvider) -> None:
    result = await provider.send(
        req(message_id=43, template_name="spring_sale", template_language="en_US", parameters=("Ann", "20%"))
    )
    assert result.outcome is Outcome.ACCEPTED
    body = cloud.requests[-1]["body"]
    assert body["type"] == "template" and "text" not in body
    assert body["template"] == {
        "name": "spring_sale",
        "language": {"code": "en_US"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Ann"}, {"type": "text", "text": "20%"}]}
        ],
    }
    assert body["biz_opaque_callback_data"] == "c7:m43:r0" and body["to"] == "14155550001"
    # no parameters: no components
    await provider.send(req(template_name="hello_world", template_language="en_US"))
    assert cloud.requests[-1]["body"]["template"] == {"name": "hello_world", "language": {"code": "en_US"}}


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        (
            "+14155550026",
            SendResult(
                Outcome.PERMANENT,
                error_code="131026",
                error_message="Message undeliverable: Recipient is not a WhatsApp user",
            ),
        ),
        (
            "+14155550429",
            SendResult(
                Outcome.TRANSIENT,
                error_code="130429",
                error_message="Rate limit hit: Cloud API message throughput has been reached.",
                retry_after=7.0,
            ),
        ),
        (
            "+14155550190",
            SendResult(
                Outcome.FATAL,
                error_code="190",
                error_message="Invalid OAuth access token - Cannot parse access token",
            ),
        ),
        # a 5xx without the Graph error envelope came from a proxy or gateway: the request
        # may have been passed on and taken
        (
            "+14155550503",
            SendResult(Outcome.TRANSIENT, error_code="http_503", error_message="upstream unavailable", ambiguous=True),
        ),
        (
            "+14155550500",
            SendResult(Outcome.TRANSIENT, error_code="131000", error_message="Something went wrong: Unknown error"),
        ),
        # 200 without a message id: it may have gone out
        ("+14155550200", SendResult(Outcome.TRANSIENT, error_code="bad_response", ambiguous=True)),
    ],
)
async def test_answers_map_to_results(provider: WhatsAppProvider, phone: str, expected: SendResult) -> None:
    assert await provider.send(req(phone)) == expected


async def test_error_codes_follow_classify(provider: WhatsAppProvider) -> None:
    assert classify("131026", 400) is Outcome.PERMANENT
    assert (await provider.send(req("+14155550026"))).outcome is classify("131026", 400)


async def test_timeout_is_transient_and_ambiguous(provider: WhatsAppProvider) -> None:
    result = await provider.send(req("+14155550999"))
    assert (result.outcome, result.error_code, result.ambiguous) == (Outcome.TRANSIENT, "timeout", True)
    # the session survives a timeout
    assert (await provider.send(req())).outcome is Outcome.ACCEPTED


async def test_connection_refused_is_transient_not_ambiguous() -> None:
    p = WhatsAppProvider(f"http://127.0.0.1:{free_port()}", "v21.0", PHONE_ID, TOKEN, timeout_s=2)
    try:
        result = await p.send(req())
    finally:
        await p.close()
    assert (result.outcome, result.error_code, result.ambiguous) == (
        Outcome.TRANSIENT,
        "connection_error",
        False,
    )


async def test_connection_dropped_mid_request_is_ambiguous() -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)  # the request arrived ...
        writer.close()  # ... and the connection dies without an answer

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    p = WhatsAppProvider(f"http://127.0.0.1:{port}", "v21.0", PHONE_ID, TOKEN, timeout_s=2)
    try:
        result = await p.send(req())
    finally:
        await p.close()
        server.close()
        await server.wait_closed()
    assert (result.outcome, result.error_code, result.ambiguous) == (
        Outcome.TRANSIENT,
        "connection_error",
        True,
    )


async def test_concurrent_sends_share_one_session(cloud: CloudApi) -> None:
    provider = WhatsAppProvider(cloud.url, "v21.0", PHONE_ID, TOKEN, concurrency=50, timeout_s=30)
    try:
        await _concurrent_sends(provider)
    finally:
        await provider.close()


async def _concurrent_sends(provider: WhatsAppProvider) -> None:
    results = await asyncio.gather(*(provider.send(req(f"+1415555{i:04d}", 1000 + i)) for i in range(1100, 1300)))
    assert [r for r in results if r.outcome is not Outcome.ACCEPTED] == []
    assert {r.provider_message_id for r in results} == {f"wamid.msg-{1000 + i}" for i in range(1100, 1300)}
    session = provider._session
    assert session is not None and await provider.send(req()) and provider._session is session
    await provider.close()
    assert session.closed and provider._session is None
    # usable again after close (a new session in the running loop)
    assert (await provider.send(req())).outcome is Outcome.ACCEPTED


def test_honours_idempotency_is_configured() -> None:
    assert WhatsAppProvider("http://x", honours_idempotency=True).honours_idempotency is True
    assert WhatsAppProvider("http://x").honours_idempotency is False


# --- status webhook format ----------------------------------------------------------


def test_signature_round_trip() -> None:
    body = b'{"object":"whatsapp_business_account"}'
    header = signature("secret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature("secret", body, header)
    assert not verify_signature("other", body, header)
    assert not verify_signature("secret", body + b" ", header)
    assert not verify_signature("secret", body, None)
    assert not verify_signature("secret", body, header.removeprefix("sha256="))


def test_parse_status_webhook() -> None:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
                            "statuses": [
                                {
                                    "id": "wamid.A",
                                    "status": "delivered",
                                    "timestamp": "1750263773",
                                    "recipient_id": "14155550001",
                                    "biz_opaque_callback_data": "c7:m42:r0",
                                    "pricing": {"billable": True, "category": "marketing"},
                                },
                                {
                                    "id": "wamid.B",
                                    "status": "failed",
                                    "timestamp": "1750263774",
                                    "recipient_id": "14155550026",
                                    "errors": [
                                        {
                                            "code": 131026,
                                            "title": "Message undeliverable",
                                            "message": "Message undeliverable",
                                            "error_data": {"details": "Recipient is not a WhatsApp user"},
                                        }
                                    ],
                                },
                                {"status": "read"},  # malformed: skipped
                            ],
                        },
                    },
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "messages": [{"from": "14155550001", "id": "wamid.IN", "type": "text"}],
                        },
                    },
                ],
            }
        ],
    }
    a, b = parse_status_webhook(payload)
    assert (a.provider_message_id, a.status, a.timestamp, a.message_id) == (
        "wamid.A",
        "delivered",
        1750263773,
        42,
    )
    assert a.extra == {"recipient_id": "14155550001"} and a.error_code is None
    assert (b.provider_message_id, b.status, b.message_id, b.error_code) == (
        "wamid.B",
        "failed",
        None,
        "131026",
    )
    assert b.error_message == "Message undeliverable: Recipient is not a WhatsApp user"
    assert parse_status_webhook({"object": "page", "entry": payload["entry"]}) == []
    assert parse_status_webhook([1, 2]) == []
    assert parse_status_webhook({"object": "whatsapp_business_account", "entry": "x"}) == []


def _change(field_name: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": field_name, "value": value}]}],
    }


META = {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID}


@pytest.mark.parametrize(
    ("pricing", "category"),
    [
        ({"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}, "marketing"),
        ({"billable": True, "category": " Utility "}, "utility"),
        ({"billable": True, "category": "référence!"}, "other"),  # an unexpected form is still billable
        ({"billable": True}, "other"),
        ({"billable": False, "category": "service"}, None),  # free: not counted
        ({"billable": "true", "category": "marketing"}, None),
        (None, None),
        ("marketing", None),
    ],
)
def test_a_status_says_the_category_it_is_billed_in(pricing: Any, category: str | None) -> None:
    status: dict[str, Any] = {"id": "wamid.A", "status": "sent", "timestamp": "1"}
    if pricing is not None:
        status["pricing"] = pricing
    (receipt,) = parse_status_webhook(_change("messages", {"metadata": META, "statuses": [status]}))
    assert receipt.billable_category == category


def test_parse_inbound_reads_messages_and_marketing_preferences() -> None:
    messages = _change(
        "messages",
        {
            "messaging_product": "whatsapp",
            "metadata": META,
            "contacts": [{"profile": {"name": "Ann"}, "wa_id": "14155550001"}],
            "messages": [
                {
                    "from": "14155550001",
                    "id": "wamid.IN1",
                    "timestamp": "1750263800",
                    "type": "text",
                    "text": {"body": " STOP "},
                },
                {
                    "from": "14155550002",
                    "id": "wamid.IN2",
                    "timestamp": "1750263801",
                    "type": "image",
                    "image": {"id": "9"},
                },
                {"from": "14155550003", "type": "text", "text": {"body": "no id"}},  # malformed: skipped
                "not an object",
            ],
        },
    )
    preferences = _change(
        "user_preferences",
        {
            "messaging_product": "whatsapp",
            "metadata": META,
            "user_preferences": [
                {
                    "wa_id": "14155550004",
                    "detail": "User requested to stop marketing messages",
                    "category": "marketing_messages",
                    "value": "STOP",
                    "timestamp": 1750263900,
                },
                {
                    "wa_id": "14155550005",
                    "category": "marketing_messages",
                    "value": "resume",
                    "timestamp": "1750263901",
                },
                {"wa_id": "14155550006", "category": "marketing_messages"},  # no value: skipped
            ],
        },
    )
    text, image = parse_inbound(messages)
    assert text == InboundMessage(PHONE_ID, "14155550001", "wamid.IN1", 1750263800, "text", " STOP ")
    assert image == InboundMessage(PHONE_ID, "14155550002", "wamid.IN2", 1750263801, "image", None)
    stop, resume = parse_inbound(preferences)
    assert stop == PreferenceChange(
        PHONE_ID, "14155550004", "marketing_messages", "stop", 1750263900, "User requested to stop marketing messages"
    )
    assert isinstance(resume, PreferenceChange)
    assert (resume.value, resume.timestamp, resume.detail) == ("resume", 1750263901, None)
    # statuses are parse_status_webhook's, and inbound messages are not receipts
    assert parse_status_webhook(messages) == [] and parse_status_webhook(preferences) == []


@pytest.mark.parametrize(
    "payload", [None, [], {"object": "page", "entry": []}, {"object": "whatsapp_business_account"}]
)
def test_parse_inbound_of_anything_else_is_nothing(payload: Any) -> None:
    assert parse_inbound(payload) == []


def test_a_named_template_sends_each_parameter_with_its_name() -> None:
    named = SendRequest(
        message_id=1,
        campaign_id=2,
        phone="+14155550100",
        body="",
        template_name="order_update",
        template_language="en_US",
        parameters=("Ann", "A1"),
        parameter_names=("first_name", "order_id"),
    )
    (component,) = build_payload(named)["template"]["components"]
    assert component["parameters"] == [
        {"type": "text", "parameter_name": "first_name", "text": "Ann"},
        {"type": "text", "parameter_name": "order_id", "text": "A1"},
    ]
    positional = dataclasses.replace(named, parameter_names=())
    (component,) = build_payload(positional)["template"]["components"]
    assert component["parameters"] == [{"type": "text", "text": "Ann"}, {"type": "text", "text": "A1"}]
