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

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from domain.errors import ErrorCode
from providers.whatsapp import verify_signature
from runtime.request_ids import new_request_id
from web.errors import HttpErrorCode, error_body, error_response
from web.observability import LATENCY, REQUESTS

__all__ = ["MAX_WEBHOOK_BYTES", "PATH", "WebhookFastPath", "whatsapp_webhook_verify"]

PATH = "/webhooks/whatsapp"
#: Meta's webhook payloads are small (a few KiB); refuse anything absurd
MAX_WEBHOOK_BYTES = 4 * 1024 * 1024


async def whatsapp_webhook_verify(request: Request) -> Response:
    """GET: echo `hub.challenge` when `hub.mode=subscribe` and the verify token match.
    A Starlette endpoint; POSTs never reach the router (WebhookFastPath answers them)."""
    params = request.query_params
    expected = request.app.state.settings.whatsapp_verify_token
    token = params.get("hub.verify_token") or ""
    if expected and params.get("hub.mode") == "subscribe" and hmac.compare_digest(token.encode(), expected.encode()):
        return PlainTextResponse(params.get("hub.challenge") or "")
    return error_response(403, "The verify token does not match.", ErrorCode.FORBIDDEN, ("hub.verify_token",))


_RECEIVED = b'{"received":true}'
_TOO_LARGE = (413, error_body(f"The payload is larger than {MAX_WEBHOOK_BYTES:,} bytes.", ErrorCode.LIMIT_EXCEEDED))
_INTERRUPTED = (400, error_body("The request was interrupted.", HttpErrorCode.BAD_REQUEST))
_BAD_SIGNATURE = (401, error_body("Missing or invalid X-Hub-Signature-256.", HttpErrorCode.UNAUTHENTICATED))
_NOT_JSON = (400, error_body("The body is not a JSON object.", HttpErrorCode.BAD_REQUEST))
_NOT_STORED = (503, error_body("The receipt could not be stored; send it again.", HttpErrorCode.UNAVAILABLE))


async def receive_statuses(state: Any, body: bytes, signature: str | None) -> tuple[int, bytes]:
    """The POST's answer (status, JSON body) for a raw body and its signature header."""
    if not verify_signature(state.settings.whatsapp_app_secret, body, signature):
        return _BAD_SIGNATURE
    try:
        payload = json.loads(body)
    except ValueError:
        return _NOT_JSON
    if not isinstance(payload, dict):
        return _NOT_JSON
    try:
        await state.inbox.put(body.decode())
    except Exception:
        return _NOT_STORED
    return 200, _RECEIVED


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
