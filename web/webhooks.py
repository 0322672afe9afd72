"""`/webhooks/whatsapp`: Meta's verification handshake (GET) and status receipts (POST).

Public (no API key): Meta authenticates a POST with `X-Hub-Signature-256`, an
HMAC-SHA256 of the raw body keyed with the app secret; anything unsigned or badly
signed is refused with 401 before the body is even parsed. A POST answers 200 once its
body is committed to the inbox (services/inbox.py: a group commit, touching no
campaign row), and its receipts are applied right after, in bulk. A failed commit
answers 503 and Meta redelivers, which is safe because applying receipts is idempotent.

Meta posts about three of these per message sent, one status each, so the POST is the
busiest request the API serves: `WebhookFastPath` answers it in front of the
middleware stack (as bare ASGI, as the simulator answers its sends), still counted in
the metrics and carrying an X-Request-ID like every response.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from providers.whatsapp import verify_signature
from web.observability import LATENCY, REQUESTS, new_request_id

__all__ = ["MAX_WEBHOOK_BYTES", "PATH", "WebhookFastPath", "whatsapp_webhook", "whatsapp_webhook_verify"]

PATH = "/webhooks/whatsapp"
#: Meta's webhook payloads are small (a few KiB); refuse anything absurd
MAX_WEBHOOK_BYTES = 4 * 1024 * 1024


async def whatsapp_webhook_verify(request: Request) -> Response:
    """GET: echo `hub.challenge` when `hub.mode=subscribe` and the verify token match."""
    params = request.query_params
    expected = request.app.state.settings.whatsapp_verify_token
    token = params.get("hub.verify_token") or ""
    if expected and params.get("hub.mode") == "subscribe" and hmac.compare_digest(token.encode(), expected.encode()):
        return PlainTextResponse(params.get("hub.challenge") or "")
    return PlainTextResponse("verification failed", status_code=403)


def _error(message: str) -> bytes:
    return json.dumps({"errors": [{"message": message}]}).encode()


_RECEIVED = b'{"received":true}'
_TOO_LARGE = (413, _error("payload too large"))
_INTERRUPTED = (400, _error("request interrupted"))


async def receive_statuses(state: Any, body: bytes, signature: str | None) -> tuple[int, bytes]:
    """The POST's answer (status, JSON body) for a raw body and its signature header."""
    if not verify_signature(state.settings.whatsapp_app_secret, body, signature):
        return 401, _error("missing or invalid X-Hub-Signature-256")
    try:
        payload = json.loads(body)
    except ValueError:
        return 400, _error("the body is not JSON")
    if not isinstance(payload, dict):
        return 400, _error("the body is not a JSON object")
    try:
        await state.inbox.put(body.decode())
    except Exception:
        return 503, _error("the receipt could not be stored; send it again")
    return 200, _RECEIVED


async def whatsapp_webhook(request: Request) -> Response:
    """Both methods as a Starlette endpoint: `Route(PATH, whatsapp_webhook, methods=["GET",
    "POST"])` (the app answers POSTs in WebhookFastPath before they get here)."""
    if request.method != "POST":
        return await whatsapp_webhook_verify(request)
    raw = bytearray()
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_WEBHOOK_BYTES:
                return Response(_TOO_LARGE[1], _TOO_LARGE[0], media_type="application/json")
    except ClientDisconnect:
        return Response(_INTERRUPTED[1], _INTERRUPTED[0], media_type="application/json")
    status, answer = await receive_statuses(request.app.state, bytes(raw), request.headers.get("x-hub-signature-256"))
    return Response(answer, status, media_type="application/json")


class WebhookFastPath:
    """`POST /webhooks/whatsapp` as bare ASGI, answered before anything else of the app
    (server.App dispatches to it ahead of Starlette's middleware stack). `state` is the
    app's state: settings and the inbox writer."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self._latency = LATENCY.labels(PATH)
        self._counted = {code: REQUESTS.labels("POST", PATH, str(code)) for code in (200, 400, 401, 413, 503)}

    @staticmethod
    def handles(scope: Scope) -> bool:
        return scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        signature = request_id = None
        for name, value in scope["headers"]:  # ASGI header names are lower-case bytes
            if name == b"x-hub-signature-256":
                signature = value.decode("latin-1")
            elif name == b"x-request-id" and value and len(value) <= 64 and value.isascii():
                request_id = value
        status, answer = await self._answer(receive, signature)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(answer)),
            (b"x-request-id", request_id or new_request_id().encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})
        self._latency.observe(time.perf_counter() - started)
        self._counted[status].inc()

    async def _answer(self, receive: Receive, signature: str | None) -> tuple[int, bytes]:
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _INTERRUPTED
            body += message.get("body", b"")
            if len(body) > MAX_WEBHOOK_BYTES:
                return _TOO_LARGE
            if not message.get("more_body", False):
                break
        return await receive_statuses(self.state, body, signature)
