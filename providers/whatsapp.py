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
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from aiohttp.payload import BytesPayload

from domain.inbound import Inbound, InboundMessage, PreferenceChange
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
    "LookupRefused",
    "NumberInfo",
    "NumberProvider",
    "WhatsAppProvider",
    "build_payload",
    "parse_inbound",
    "parse_status_webhook",
    "provider_from",
    "signature",
    "verify_signature",
]

#: what a template sync asks of each template, and how many pages it reads at most
TEMPLATE_FIELDS = "id,name,language,status,category,parameter_format,components"
TEMPLATE_PAGES = 50
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
            named = len(request.parameter_names) == len(request.parameters)
            template["components"] = [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "parameter_name": request.parameter_names[i], "text": p}
                        if named
                        else {"type": "text", "text": p}
                        for i, p in enumerate(request.parameters)
                    ],
                }
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
        self.base = f"{base_url.rstrip('/')}/{api_version.strip('/')}"
        self.url = f"{self.base}/{phone_number_id}/messages"
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

    def for_number(self, phone_number_id: str, access_token: str) -> NumberProvider:
        """A Provider sending from another number with its own token, over this
        provider's connections (one pool per process, whatever the senders)."""
        return NumberProvider(self, phone_number_id, access_token)

    async def send(self, request: SendRequest) -> SendResult:
        return await self.post(self.url, self._headers, request)

    async def post(self, url: str, base_headers: dict[str, str], request: SendRequest) -> SendResult:
        """One send to `url` with these headers; never raises for provider or network
        errors."""
        # The key goes along even where it is not honoured (the Cloud API ignores it): a
        # provider that honours keys, and the simulator's seeded outcomes, use it.
        headers = {**base_headers, "Idempotency-Key": request.idempotency_key}
        # A ready payload skips aiohttp's payload-type lookup on every call (a few % of
        # the worker's CPU at thousands of calls a second).
        data = BytesPayload(_encode(build_payload(request)).encode(), content_type="application/json")
        try:
            async with self._get_session().post(url, data=data, headers=headers) as response:
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

    async def _get_json(
        self, url: str, params: dict[str, str] | None, access_token: str
    ) -> tuple[int, Any] | LookupRefused:
        """(status, parsed body or None) of a Graph API GET; a network failure is a
        refusal without a code."""
        headers = {"Authorization": f"Bearer {access_token}"}
        try:
            async with self._get_session().get(url, params=params, headers=headers) as response:
                raw, status = await response.read(), response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            return LookupRefused(None, f"the Cloud API could not be reached ({type(exc).__name__})")
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, None

    async def lookup_number(self, phone_number_id: str, access_token: str) -> NumberInfo | LookupRefused:
        """What the Cloud API says of a phone number, asked with its token: how a
        sender is checked before it is connected (never raises)."""
        url = f"{self.base}/{phone_number_id}"
        params = {
            "fields": "id,display_phone_number,verified_name,throughput,whatsapp_business_manager_messaging_limit"
        }
        answer = await self._get_json(url, params, access_token)
        if isinstance(answer, LookupRefused):
            return answer
        status, body = answer
        if status == 200 and isinstance(body, dict) and body.get("display_phone_number"):
            throughput = body.get("throughput")
            limit = body.get("whatsapp_business_manager_messaging_limit")
            return NumberInfo(
                display_phone_number=str(body["display_phone_number"]),
                verified_name=str(body["verified_name"]) if body.get("verified_name") else None,
                throughput_level=str(throughput.get("level")) if isinstance(throughput, dict) else None,
                messaging_limit=str(limit) if isinstance(limit, str) else None,
            )
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = error.get("code")
            return LookupRefused(int(code) if isinstance(code, int) else None, _error_text(error) or "refused")
        return LookupRefused(None, f"unexpected answer (HTTP {status})")

    async def list_templates(self, waba_id: str, access_token: str) -> list[dict[str, Any]] | LookupRefused:
        """Every message template of a WABA, following the Cloud API's paging (never
        raises). At most TEMPLATE_PAGES pages: Meta allows 200 such calls an hour."""
        url: str | None = f"{self.base}/{waba_id}/message_templates"
        params: dict[str, str] | None = {"fields": TEMPLATE_FIELDS, "limit": "100"}
        found: list[dict[str, Any]] = []
        for _ in range(TEMPLATE_PAGES):
            if url is None:
                break
            answer = await self._get_json(url, params, access_token)
            if isinstance(answer, LookupRefused):
                return answer
            status, body = answer
            if status != 200 or not isinstance(body, dict):
                error = body.get("error") if isinstance(body, dict) else None
                if isinstance(error, dict):
                    code = error.get("code")
                    return LookupRefused(int(code) if isinstance(code, int) else None, _error_text(error) or "refused")
                return LookupRefused(None, f"unexpected answer (HTTP {status})")
            found.extend(t for t in body.get("data") or () if isinstance(t, dict))
            paging = body.get("paging")
            following = paging.get("next") if isinstance(paging, dict) else None
            url, params = (following, None) if isinstance(following, str) else (None, None)
        return found


@dataclass(frozen=True, slots=True)
class NumberInfo:
    display_phone_number: str
    verified_name: str | None
    #: Meta's throughput level: STANDARD (80 msg/s) or HIGH (up to 1,000)
    throughput_level: str | None
    #: e.g. TIER_250
    messaging_limit: str | None


@dataclass(frozen=True, slots=True)
class LookupRefused:
    #: Meta's error code: 190 (token), 100 (no such number, or not this token's)
    code: int | None
    message: str


class NumberProvider:
    """`domain.sending.Provider` for one sender: its URL and token, the shared pool."""

    def __init__(self, parent: WhatsAppProvider, phone_number_id: str, access_token: str) -> None:
        self.parent = parent
        self.honours_idempotency = parent.honours_idempotency
        self.url = f"{parent.base}/{phone_number_id}/messages"
        self._headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"}

    async def send(self, request: SendRequest) -> SendResult:
        return await self.parent.post(self.url, self._headers, request)

    async def close(self) -> None:
        """The pool is the parent's, closed with it."""


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


def _values(payload: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(field, value) of every change of a `whatsapp_business_account` payload."""
    if payload.get("object") != "whatsapp_business_account":
        return
    for entry in payload.get("entry") or ():
        if not isinstance(entry, dict):
            continue
        for change in entry.get("changes") or ():
            if not isinstance(change, dict):
                continue
            value = change.get("value")
            if isinstance(value, dict):
                field_name = change.get("field")
                yield (field_name if isinstance(field_name, str) else "messages"), value


def _statuses(payload: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(status, its change's value) of every status update."""
    for _, value in _values(payload):
        for status in _list(value.get("statuses")):
            if isinstance(status, dict):
                yield status, value


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _phone_number_id(value: dict[str, Any]) -> str | None:
    metadata = value.get("metadata")
    found = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
    return str(found) if isinstance(found, str | int) and not isinstance(found, bool) else None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


_KNOWN_STATUSES = {s.value: s for s in ReceiptStatus}
#: pricing categories as stored (message.billable_category): Meta's are short snake_case
#: words (marketing, utility, authentication, service, referral_conversion, ...)
_CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,31}")


def billable_category(pricing: Any) -> str | None:
    """The category a status's `pricing` bills the message in, or None when it is not
    billable or says nothing usable. A category of an unexpected form counts as "other"."""
    if not isinstance(pricing, dict) or pricing.get("billable") is not True:
        return None
    category = pricing.get("category")
    text = category.strip().lower() if isinstance(category, str) else ""
    return text if _CATEGORY.fullmatch(text) else "other"


def _receipt_status(state: str) -> ReceiptStatus | str:
    lowered = state.lower()
    return _KNOWN_STATUSES.get(lowered, lowered)


def parse_status_webhook(payload: Any) -> list[Receipt]:
    """Receipts in a Meta webhook payload (`object: whatsapp_business_account`);
    entries of other kinds, inbound messages and malformed statuses are skipped."""
    if not isinstance(payload, dict):
        return []
    receipts = []
    for status, value in _statuses(payload):
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
                billable_category=billable_category(status.get("pricing")),
                # "" when the payload names no number: it then matches none (services/receipts.py)
                phone_number_id=_phone_number_id(value) or "",
            )
        )
    return receipts


def parse_inbound(payload: Any) -> list[Inbound]:
    """What people sent in a Meta webhook payload: inbound messages (`value.messages`,
    field `messages`) and marketing-preference changes (field `user_preferences`).
    Malformed entries are skipped; statuses are parse_status_webhook's."""
    if not isinstance(payload, dict):
        return []
    found: list[Inbound] = []
    for field_name, value in _values(payload):
        number = _phone_number_id(value)
        if field_name == "user_preferences":
            for item in _list(value.get("user_preferences")):
                change = _preference(item, number)
                if change is not None:
                    found.append(change)
        for item in _list(value.get("messages")):
            message = _message(item, number)
            if message is not None:
                found.append(message)
    return found


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _message(item: Any, number: str | None) -> InboundMessage | None:
    if not isinstance(item, dict):
        return None
    sender, message_id, kind = _text(item.get("from")), _text(item.get("id")), _text(item.get("type"))
    if not sender or not message_id or not kind:
        return None
    text = item.get("text")
    body = _text(text.get("body")) if kind == "text" and isinstance(text, dict) else None
    return InboundMessage(number, sender, message_id, _int(item.get("timestamp")), kind, body)


def _preference(item: Any, number: str | None) -> PreferenceChange | None:
    if not isinstance(item, dict):
        return None
    wa_id, category, value = _text(item.get("wa_id")), _text(item.get("category")), _text(item.get("value"))
    if not wa_id or not category or not value:
        return None
    return PreferenceChange(
        number, wa_id, category, value.lower(), _int(item.get("timestamp")), _text(item.get("detail"))
    )


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


@dataclass(frozen=True, slots=True)
class TemplateUpdate:
    """A `message_template_status_update` change: a template of a WABA moved status."""

    waba_id: str
    name: str
    language: str
    event: str  # APPROVED, PAUSED, DISABLED, REJECTED, ...
    reason: str | None


def parse_template_updates(payload: Any) -> list[TemplateUpdate]:
    """Template status changes in a Meta webhook payload (`entry[].id` is the WABA)."""
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        return []
    found = []
    for entry in _list(payload.get("entry")):
        if not isinstance(entry, dict) or entry.get("id") is None:
            continue
        for change in _list(entry.get("changes")):
            if not isinstance(change, dict) or change.get("field") != "message_template_status_update":
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            name, language, event = (
                value.get("message_template_name"),
                value.get("message_template_language"),
                value.get("event"),
            )
            if isinstance(name, str) and isinstance(language, str) and isinstance(event, str):
                reason = value.get("reason")
                found.append(
                    TemplateUpdate(
                        str(entry["id"]),
                        name,
                        language,
                        event.upper(),
                        str(reason) if reason not in (None, "NONE") else None,
                    )
                )
    return found
