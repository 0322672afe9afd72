"""Helpers for the simulator tests: serve an app with uvicorn on a loopback port, talk to
it over real HTTP with aiohttp, and receive its webhooks with a second tiny app.

Self-contained on purpose: nothing here needs the database fixtures of tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator import Simulator, SimulatorConfig, create_simulator_app
from tests.conftest import serve

PHONE_NUMBER_ID = "100000000000001"
TOKEN = "dev-token"


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Sim:
    """A running simulator and a client for it."""

    url: str
    simulator: Simulator
    http: aiohttp.ClientSession

    async def send(
        self,
        payload: dict[str, Any] | bytes,
        key: str | None = None,
        token: str | None = TOKEN,
        phone_number_id: str = PHONE_NUMBER_ID,
        version: str = "v21.0",
    ) -> Reply:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        async with self.http.post(f"{self.url}/{version}/{phone_number_id}/messages", data=data, headers=headers) as r:
            return Reply(r.status, await r.json(content_type=None), dict(r.headers))

    async def ledger(self, phone_number_id: str | None = None) -> dict[str, Any]:
        params = {"phone_number_id": phone_number_id} if phone_number_id else None
        async with self.http.get(f"{self.url}/_simulator/ledger", params=params) as r:
            assert r.status == 200
            return await r.json()

    async def lookup(
        self, phone_number_id: str, fields: str | None = None, token: str | None = TOKEN, version: str = "v26.0"
    ) -> Reply:
        """`GET /{version}/{phone_number_id}?fields=...` as the service checks a sender."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        params = {"fields": fields} if fields is not None else None
        async with self.http.get(f"{self.url}/{version}/{phone_number_id}", params=params, headers=headers) as r:
            return Reply(r.status, await r.json(content_type=None), dict(r.headers))

    async def register(self, **number: Any) -> Reply:
        """`POST /_simulator/numbers` with these fields."""
        async with self.http.post(f"{self.url}/_simulator/numbers", json=number) as r:
            return Reply(r.status, await r.json(), dict(r.headers))


def second_number(**fields: Any) -> dict[str, Any]:
    """A number of another WABA, with a token of its own."""
    return {
        "phone_number_id": "100000000000002",
        "waba_id": "200000000000002",
        "display_phone_number": "15550000002",
        "verified_name": "Second Shop",
        "access_token": "token-2",
    } | fields


def text(to: str, body: str = "Hi", callback: str | None = None) -> dict[str, Any]:
    """A Cloud API text message request."""
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"body": body},
    }
    if callback is not None:
        payload["biz_opaque_callback_data"] = callback
    return payload


def phone(i: int) -> str:
    return f"+1415{2000000 + i:07d}"


def template(
    to: str, name: str = "spring_sale", callback: str | None = None, parameters: tuple[str, ...] = ("Ada", "20%")
) -> dict[str, Any]:
    """A Cloud API template message request; by default of the sample `spring_sale`
    (en_US, two positional body parameters) every simulator serves."""
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}],
        },
    }
    if callback is not None:
        payload["biz_opaque_callback_data"] = callback
    return payload


def assert_error(reply: Reply, status: int, code: int) -> dict[str, Any]:
    """Meta's envelope: message, type, code, error_data{messaging_product, details}, fbtrace_id."""
    assert reply.status == status, reply
    error = reply.body["error"]
    assert error["code"] == code
    assert error["type"] == "OAuthException"
    assert isinstance(error["message"], str) and error["message"]
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert isinstance(error["error_data"]["details"], str)
    assert error["fbtrace_id"]
    return error


def assert_graph_error(
    reply: Reply, status: int, code: int, error_type: str = "OAuthException", subcode: int | None = None
) -> dict[str, Any]:
    """The Graph API's own envelope (token, object, field errors): message, type, code,
    error_subcode when there is one, fbtrace_id; no WhatsApp `error_data`."""
    assert reply.status == status, reply
    error = reply.body["error"]
    assert (error["code"], error["type"], error.get("error_subcode")) == (code, error_type, subcode)
    assert isinstance(error["message"], str) and error["message"]
    assert "error_data" not in error and error["fbtrace_id"]
    return error


@asynccontextmanager
async def running(config: SimulatorConfig | None = None) -> AsyncIterator[Sim]:
    app = create_simulator_app(config or SimulatorConfig())
    async with serve(app) as url, aiohttp.ClientSession() as http:
        yield Sim(url, app.state.simulator, http)


@dataclass
class Receiver:
    """The service's side of webhooks, reduced to recording what arrives."""

    app_secret: str = "dev-app-secret"
    #: answer 500 to this many POSTs first (to make the simulator retry)
    fail_first: int = 0
    #: seconds each POST takes to answer (a slow receiver)
    delay_s: float = 0.0
    posts: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    attempts: int = 0
    url: str = ""

    @property
    def statuses(self) -> list[dict[str, Any]]:
        return [
            s
            for post in self.posts
            for entry in post["entry"]
            for change in entry["changes"]
            for s in change["value"]["statuses"]
        ]

    async def handle(self, request: Request) -> Response:
        self.attempts += 1
        raw = await request.body()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        expected = "sha256=" + hmac.new(self.app_secret.encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("x-hub-signature-256", ""), expected):
            self.bad_signatures += 1
            return Response(status_code=401)
        if self.fail_first > 0:
            self.fail_first -= 1
            return Response(status_code=500)
        self.posts.append(json.loads(raw))
        return Response(status_code=200)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = Starlette(routes=[Route("/webhooks/whatsapp", recv.handle, methods=["POST"])])
    async with serve(app) as url:
        recv.url = f"{url}/webhooks/whatsapp"
        yield recv
