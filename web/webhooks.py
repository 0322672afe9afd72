"""`/webhooks/whatsapp`: Meta's verification handshake (GET) and status receipts (POST).

Public (no API key): Meta authenticates a POST with `X-Hub-Signature-256`, an
HMAC-SHA256 of the raw body keyed with the app secret; anything unsigned or badly
signed is refused with 401 before the body is even parsed. A POST answers 200 once
its receipts are committed; an error answers 5xx and Meta redelivers, which is safe
because applying receipts is idempotent.
"""

from __future__ import annotations

import hmac
import json

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from providers.whatsapp import parse_status_webhook, verify_signature
from services.receipts import apply_receipts

__all__ = ["MAX_WEBHOOK_BYTES", "whatsapp_webhook", "whatsapp_webhook_receive", "whatsapp_webhook_verify"]

#: Meta's webhook payloads are small (a few KiB); refuse anything absurd
MAX_WEBHOOK_BYTES = 4 * 1024 * 1024


async def whatsapp_webhook_verify(request: Request) -> Response:
    """GET: echo `hub.challenge` when `hub.mode=subscribe` and the verify token match."""
    params = request.query_params
    expected = request.app.state.settings.whatsapp_verify_token
    token = params.get("hub.verify_token") or ""
    if params.get("hub.mode") == "subscribe" and hmac.compare_digest(token.encode(), expected.encode()):
        return PlainTextResponse(params.get("hub.challenge") or "")
    return PlainTextResponse("verification failed", status_code=403)


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
    report = await apply_receipts(parse_status_webhook(payload))
    publisher = getattr(request.app.state, "publisher", None)
    if publisher is not None:
        publisher.touched(report.campaign_ids)
    return JSONResponse({"applied": report.applied, "unchanged": report.unchanged, "unknown": report.unknown})


async def whatsapp_webhook(request: Request) -> Response:
    """One endpoint for both methods: `Route("/webhooks/whatsapp", whatsapp_webhook,
    methods=["GET", "POST"])`."""
    if request.method == "POST":
        return await whatsapp_webhook_receive(request)
    return await whatsapp_webhook_verify(request)
