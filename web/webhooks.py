"""`/webhooks/whatsapp`: Meta's verification handshake (GET) and status receipts (POST).

Public (no API key): Meta authenticates a POST with `X-Hub-Signature-256`, an
HMAC-SHA256 of the raw body keyed with the app secret; anything unsigned or badly
signed is refused with 401 before the body is even parsed. A POST answers 200 once its
body is committed to the inbox (services/inbox.py: a group commit, touching no
campaign row), and its receipts are applied right after, in bulk. A failed commit
answers 503 and Meta redelivers, which is safe because applying receipts is idempotent.
"""

from __future__ import annotations

import hmac
import json

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from providers.whatsapp import verify_signature

__all__ = ["MAX_WEBHOOK_BYTES", "whatsapp_webhook", "whatsapp_webhook_receive", "whatsapp_webhook_verify"]

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


_RECEIVED = Response(b'{"received":true}', media_type="application/json")


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message}]}, status_code=status)


async def whatsapp_webhook_receive(request: Request) -> Response:
    """POST: check the signature over the raw body, then apply the status receipts."""
    raw = bytearray()
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_WEBHOOK_BYTES:
                return _error("payload too large", 413)
    except ClientDisconnect:
        return _error("request interrupted", 400)
    body = bytes(raw)
    secret = request.app.state.settings.whatsapp_app_secret
    if not verify_signature(secret, body, request.headers.get("x-hub-signature-256")):
        return _error("missing or invalid X-Hub-Signature-256", 401)
    try:
        payload = json.loads(body)
    except ValueError:
        return _error("the body is not JSON", 400)
    if not isinstance(payload, dict):
        return _error("the body is not a JSON object", 400)
    try:
        await request.app.state.inbox.put(body.decode())
    except Exception:
        return _error("the receipt could not be stored; send it again", 503)
    return _RECEIVED


async def whatsapp_webhook(request: Request) -> Response:
    """One endpoint for both methods: `Route("/webhooks/whatsapp", whatsapp_webhook,
    methods=["GET", "POST"])`."""
    if request.method == "POST":
        return await whatsapp_webhook_receive(request)
    return await whatsapp_webhook_verify(request)
