"""WhatsApp Cloud API: the send request, its answers, and the status webhook format.

`WhatsAppProvider` implements `domain.sending.Provider` over one aiohttp session per
instance (keep-alive, a connector limit equal to the concurrency: httpx collapses under
this load, see docs/STACK.md). It never raises for provider or network errors: every
answer becomes a `SendResult`.

The wire-format helpers (`signature`, `verify_signature`, `parse_status_webhook`) serve
the webhook endpoint and the tests. The simulator writes the same format on its own
(simulator/wire.py), on purpose: each side is tested against the other, so a mistake
in one is not silently shared by both.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from aiohttp.payload import BytesPayload

from domain.sending import (
    Outcome,
    Receipt,
    ReceiptStatus,
    SendRequest,
    SendResult,
    callback_data,
    classify,
    parse_callback_data,
)
from settings import Settings

__all__ = [
    "WhatsAppProvider",
    "build_payload",
    "parse_status_webhook",
    "provider_from",
    "signature",
    "verify_signature",
]

_encode = json.JSONEncoder(separators=(",", ":")).encode
_ACCEPTED_NO_ID = SendResult(Outcome.TRANSIENT, error_code="bad_response", ambiguous=True)


def build_payload(request: SendRequest) -> dict[str, Any]:
    """The body of `POST /{version}/{phone_number_id}/messages` for one request."""
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": request.phone.lstrip("+"),
    }
    if request.key is None:
        # campaign messages only: a receipt finds its message even before the provider
        # id is stored (test messages have no row in `message` to find)
        payload["biz_opaque_callback_data"] = callback_data(request.campaign_id, request.message_id, request.send_round)
    if request.template_name:
        template: dict[str, Any] = {
            "name": request.template_name,
            "language": {"code": request.template_language or "en_US"},
        }
        if request.parameters:
            template["components"] = [
                {"type": "body", "parameters": [{"type": "text", "text": p} for p in request.parameters]}
            ]
        payload["type"] = "template"
        payload["template"] = template
    else:
        payload["type"] = "text"
        payload["text"] = {"body": request.body, "preview_url": False}
    return payload


def _retry_after(value: str | None) -> float | None:
    """`Retry-After`: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _error_text(error: dict[str, Any]) -> str | None:
    message = error.get("message") or error.get("title")
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    if message and details and details != message:
        return f"{message}: {details}"
    return str(message or details) if (message or details) else None


def _result(status: int, raw: bytes, retry_after: str | None) -> SendResult:
    """Map one HTTP answer of the Cloud API to a SendResult."""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if status == 200:
        try:
            return SendResult(Outcome.ACCEPTED, provider_message_id=str(body["messages"][0]["id"]))  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            # 200 without a message id: it may well have been sent
            return _ACCEPTED_NO_ID
    wait = _retry_after(retry_after)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("code") is not None:
        code = str(error["code"])
        return SendResult(
            classify(code, status),
            error_code=code,
            error_message=_error_text(error),
            retry_after=wait,
        )
    text = raw[:200].decode("utf-8", "replace") or None
    # A 5xx without the Graph API's error envelope came from something in front of it
    # (a proxy, a gateway timing out): the request may have been sent on and taken.
    return SendResult(
        classify(None, status),
        error_code=f"http_{status}",
        error_message=text,
        retry_after=wait,
        ambiguous=status >= 500,
    )


class WhatsAppProvider:
    """`domain.sending.Provider` for the WhatsApp Cloud API (or the simulator)."""

    def __init__(
        self,
        base_url: str,
        api_version: str = "v26.0",
        phone_number_id: str = "",
        access_token: str = "",
        *,
        concurrency: int = 200,
        timeout_s: float = 15.0,
        honours_idempotency: bool = False,
        keepalive_timeout: float = 15.0,
    ) -> None:
        self.honours_idempotency = honours_idempotency
        self.url = f"{base_url.rstrip('/')}/{api_version.strip('/')}/{phone_number_id}/messages"
        self.concurrency = concurrency
        self.keepalive_timeout = keepalive_timeout
        self._headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily inside the running loop; no await between check and assignment.
        session = self._session
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.concurrency, keepalive_timeout=self.keepalive_timeout, ttl_dns_cache=300
            )
            session = self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return session

    async def send(self, request: SendRequest) -> SendResult:
        # The key goes along even where it is not honoured (the Cloud API ignores it): a
        # provider that honours keys, and the simulator's seeded outcomes, use it.
        headers = {**self._headers, "Idempotency-Key": request.idempotency_key}
        # A ready payload skips aiohttp's payload-type lookup on every call (a few % of
        # the worker's CPU at thousands of calls a second).
        data = BytesPayload(_encode(build_payload(request)).encode(), content_type="application/json")
        try:
            async with self._get_session().post(self.url, data=data, headers=headers) as response:
                raw = await response.read()
                return _result(response.status, raw, response.headers.get("Retry-After"))
        except aiohttp.ConnectionTimeoutError as exc:
            # no connection was made within the timeout: the request never left
            return SendResult(Outcome.TRANSIENT, error_code="timeout", error_message=str(exc) or "connect timeout")
        except TimeoutError:  # asyncio.TimeoutError (= TimeoutError) and aiohttp.ServerTimeoutError
            return SendResult(
                Outcome.TRANSIENT, error_code="timeout", error_message="no answer in time", ambiguous=True
            )
        except aiohttp.ClientConnectorError as exc:
            # refused / unreachable / DNS: the request was never sent
            return SendResult(Outcome.TRANSIENT, error_code="connection_error", error_message=str(exc))
        except aiohttp.ClientError as exc:
            # reset or disconnected mid-request: it may have reached the provider
            return SendResult(
                Outcome.TRANSIENT,
                error_code="connection_error",
                error_message=f"{type(exc).__name__}: {exc}",
                ambiguous=True,
            )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


# --- status webhooks -------------------------------------------------------------


def signature(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` header value Meta sends with `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` signs `body` with `app_secret`. An empty secret verifies
    nothing: anyone can compute an HMAC keyed with the empty string."""
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(signature(app_secret, body), header.strip())


def _statuses(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for entry in payload.get("entry") or ():
        if not isinstance(entry, dict):
            continue
        for change in entry.get("changes") or ():
            if not isinstance(change, dict):
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            # value.messages (inbound messages) is not ours to handle here
            for status in value.get("statuses") or ():
                if isinstance(status, dict):
                    yield status


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


_KNOWN_STATUSES = {s.value: s for s in ReceiptStatus}


def _receipt_status(state: str) -> ReceiptStatus | str:
    lowered = state.lower()
    return _KNOWN_STATUSES.get(lowered, lowered)


def parse_status_webhook(payload: Any) -> list[Receipt]:
    """Receipts in a Meta webhook payload (`object: whatsapp_business_account`);
    entries of other kinds, inbound messages and malformed statuses are skipped."""
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        return []
    receipts = []
    for status in _statuses(payload):
        provider_id = status.get("id")
        state = status.get("status")
        if not isinstance(provider_id, str) or not isinstance(state, str):
            continue
        ours = parse_callback_data(status.get("biz_opaque_callback_data"))
        code = message = None
        errors = status.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            code = str(first["code"]) if first.get("code") is not None else None
            message = _error_text(first)
        extra = {"recipient_id": str(status["recipient_id"])} if status.get("recipient_id") else {}
        receipts.append(
            Receipt(
                provider_message_id=provider_id,
                status=_receipt_status(state),
                timestamp=_int(status.get("timestamp")),
                message_id=ours.message_id if ours else None,
                send_round=ours.send_round if ours else None,
                error_code=code,
                error_message=message,
                extra=extra,
            )
        )
    return receipts


def provider_from(settings: Settings, concurrency: int) -> WhatsAppProvider:
    """The provider `settings` describe (base URL and version given once)."""
    base, version = settings.provider_endpoint()
    return WhatsAppProvider(
        base,
        version,
        settings.whatsapp_phone_number_id,
        settings.whatsapp_access_token,
        concurrency=concurrency,
        timeout_s=settings.whatsapp_timeout_s,
        honours_idempotency=settings.whatsapp_idempotency,
    )
