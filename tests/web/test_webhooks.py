"""`/webhooks/whatsapp` over real HTTP: the verification handshake, signatures, and a
Meta-format status payload applied to the database."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.routing import Route

from domain.messages import failure_text
from models import Campaign, Message
from providers.whatsapp import signature
from server import App
from services.inbox import InboxApplier, InboxWriter
from services.receipts import ReceiptReport
from settings import Settings
from tests.conftest import Api, serve
from tests.services.test_receipts import T0, assert_consistent, pid, prepare
from web.webhooks import PATH, WebhookFastPath, whatsapp_webhook_verify


@pytest_asyncio.fixture(scope="module")
async def hook(server: str, settings: Settings, app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The webhook endpoints alone, in an app without a lifespan (the session app has
    initialised the ORM already; `server` migrated the database), with an inbox writer
    and no applier running (the session app's is stopped meanwhile): each test applies
    what was received with `applied()`."""
    await app.state.applier.close()
    hooks = App(routes=[Route(PATH, whatsapp_webhook_verify)])
    hooks.webhooks = WebhookFastPath(hooks.state)  # POSTs, as in server.create_app
    hooks.state.settings = settings
    hooks.state.inbox = InboxWriter()
    await hooks.state.inbox.start()
    try:
        async with serve(hooks) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            _APPS[id(client)] = hooks
            yield client
    finally:
        await hooks.state.inbox.close()
        await app.state.applier.start()


_APPS: dict[int, Starlette] = {}


def hooks_app(client: httpx.AsyncClient) -> Starlette:
    """The app behind the `hook` client (to change its settings in a test)."""
    return _APPS[id(client)]


async def applied() -> ReceiptReport:
    """Apply what the inbox holds (all of it: one batch is 2,000 bodies)."""
    return (await InboxApplier().apply_once()).report


def meta_payload(*statuses: dict[str, Any], inbound: bool = True) -> dict[str, Any]:
    changes: list[dict[str, Any]] = [
        {
            "field": "messages",
            "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "100000000000001"},
                "statuses": list(statuses),
            },
        }
    ]
    if inbound:
        changes.append(
            {
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": "100000000000001"},
                    "contacts": [{"profile": {"name": "Ann"}, "wa_id": "14152000000"}],
                    "messages": [
                        {
                            "from": "14152000000",
                            "id": "wamid.INBOUND",
                            "timestamp": str(T0),
                            "type": "text",
                            "text": {"body": "STOP"},
                        }
                    ],
                },
            }
        )
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": changes}]}


def status(mid: int, state: str, ts: int = T0, *, ours: bool = True, campaign: int = 0, **extra: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "id": pid(mid),
        "status": state,
        "timestamp": str(ts),
        "recipient_id": "14152000000",
        "conversation": {"id": "CONVERSATION_ID", "origin": {"type": "marketing"}},
        "pricing": {"billable": True, "pricing_model": "CBP", "category": "marketing"},
    }
    if ours:
        s["biz_opaque_callback_data"] = f"c{campaign}:m{mid}"
    return s | extra


async def post(client: httpx.AsyncClient, body: bytes, secret: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = signature(secret, body)
    return await client.post(PATH, content=body, headers=headers)


async def test_verification_handshake(hook: httpx.AsyncClient, settings: Settings) -> None:
    ok = await hook.get(
        PATH,
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": settings.whatsapp_verify_token,
            "hub.challenge": "1158201444",
        },
    )
    assert ok.status_code == 200
    assert ok.text == "1158201444"
    assert ok.headers["content-type"].startswith("text/plain")


async def test_verification_refused(hook: httpx.AsyncClient, settings: Settings) -> None:
    for params in (
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": settings.whatsapp_verify_token, "hub.challenge": "1"},
        {"hub.challenge": "1"},
    ):
        refused = await hook.get(PATH, params=params)
        assert refused.status_code == 403
        assert "1" not in refused.text


async def test_bad_signature_changes_nothing(hook: httpx.AsyncClient, api: Api, settings: Settings) -> None:
    pk, ids = await prepare(api, sent=2)
    before = await assert_consistent(pk)
    body = json.dumps(meta_payload(status(ids[0], "read", campaign=pk))).encode()
    for secret in (None, "not-the-app-secret"):
        response = await post(hook, body, secret)
        assert response.status_code == 401, response.text
    tampered = await hook.post(
        PATH,
        content=body.replace(b'"read"', b'"failed"'),
        headers={"X-Hub-Signature-256": signature(settings.whatsapp_app_secret, body)},
    )
    assert tampered.status_code == 401
    assert await assert_consistent(pk) == before
    assert {m.status for m in await Message.filter(campaign_id=pk)} == {"SENT"}


async def test_an_empty_app_secret_verifies_nothing(
    hook: httpx.AsyncClient, api: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 12: with WHATSAPP_APP_SECRET empty (docker-compose.yml's old default), a
    webhook signed with the empty key was accepted: anyone could forge receipts."""
    pk, ids = await prepare(api, sent=1)
    body = json.dumps(meta_payload(status(ids[0], "failed", campaign=pk))).encode()
    empty = dataclasses.replace(settings, whatsapp_app_secret="", whatsapp_verify_token="")
    monkeypatch.setitem(hooks_app(hook).state._state, "settings", empty)
    response = await post(hook, body, "")
    assert response.status_code == 401
    handshake = await hook.get(PATH, params={"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "x"})
    assert handshake.status_code == 403
    assert {m.status for m in await Message.filter(campaign_id=pk)} == {"SENT"}


async def test_malformed_json_is_400(hook: httpx.AsyncClient, settings: Settings) -> None:
    for body in (b"{not json", b"[1, 2]"):
        response = await post(hook, body, settings.whatsapp_app_secret)
        assert response.status_code == 400, response.text


async def test_meta_payload_applied(hook: httpx.AsyncClient, api: Api, settings: Settings) -> None:
    pk, ids = await prepare(api, sending=1, sent=4)
    failure: dict[str, Any] = {
        "errors": [
            {
                "code": 131026,
                "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": "Message Undeliverable."},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }
        ]
    }
    payload = meta_payload(
        status(ids[0], "sent", T0, campaign=pk),  # SENDING: the worker has not written yet
        status(ids[1], "read", T0 + 9, campaign=pk),
        status(ids[1], "delivered", T0 + 5, campaign=pk),  # weaker, later in the payload
        status(ids[2], "delivered", T0 + 5, ours=False),  # found by the provider id
        status(ids[3], "failed", T0 + 5, campaign=pk, **failure),
        status(ids[4], "sent", T0, campaign=pk),  # duplicate of what the worker wrote
        {"id": "wamid.SOMEONE-ELSES", "status": "delivered", "timestamp": str(T0), "recipient_id": "1"},
    )
    body = json.dumps(payload).encode()
    response = await post(hook, body, settings.whatsapp_app_secret)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True}  # durable in the inbox; applied next
    report = await applied()
    assert (report.applied, report.unchanged, report.unknown) == (5, 1, 1)
    by_id = {m.id: m for m in await Message.filter(campaign_id=pk)}
    assert [by_id[i].status for i in ids] == ["SENT", "READ", "DELIVERED", "FAILED", "SENT"]
    assert by_id[ids[0]].provider_message_id == pid(ids[0])
    assert by_id[ids[3]].error_code == "131026"
    # what to do first (domain/messages.FAILURE_TEXTS), then Meta's words
    assert by_id[ids[3]].error_message == failure_text("131026", "Message undeliverable: Message Undeliverable.")
    assert await assert_consistent(pk) == {
        "pending": 0,
        "sent": 4,
        "delivered": 2,
        "read": 1,
        "failed": 1,
        "cancelled": 0,
    }
    # Meta redelivers: the same payload again changes nothing
    again = await post(hook, body, settings.whatsapp_app_secret)
    assert again.json() == {"received": True}
    report = await applied()
    assert (report.applied, report.unchanged, report.unknown) == (0, 6, 1)
    assert (await Campaign.get(id=pk)).read == 1


async def test_other_objects_and_empty_payloads(hook: httpx.AsyncClient, settings: Settings) -> None:
    for payload in (
        {"object": "page", "entry": []},
        {"object": "whatsapp_business_account", "entry": []},
        meta_payload(inbound=True),
    ):
        response = await post(hook, json.dumps(payload).encode(), settings.whatsapp_app_secret)
        assert response.status_code == 200
        report = await applied()
        assert (report.applied, report.unchanged, report.unknown) == (0, 0, 0)
