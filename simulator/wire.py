"""The WhatsApp Cloud API wire format: error envelopes, send requests, status webhooks.

Kept apart from the behaviour (fate, ledger) so the exact shapes Meta uses are in one
place and the adapter's tests can be read against it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

DOCS = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """How Meta answers one error code: HTTP status, title (webhooks), message and details."""

    http_status: int
    title: str
    details: str
    transient: bool = False


#: The codes the service classifies (domain/sending.py) and a few more. Statuses are Meta's.
ERRORS: dict[int, ErrorInfo] = {
    0: ErrorInfo(401, "AuthException", "We were unable to authenticate the app user."),
    2: ErrorInfo(503, "API Service", "Temporary due to downtime or due to being overloaded.", True),
    3: ErrorInfo(403, "API Method", "Capability or permissions issue."),
    4: ErrorInfo(400, "Too many calls", "The app has reached its API call rate limit.", True),
    10: ErrorInfo(403, "Permission Denied", "Permission is either not granted or has been removed."),
    100: ErrorInfo(400, "Invalid parameter", "The request included one or more unsupported or misspelled parameters."),
    104: ErrorInfo(400, "Incorrect signature", "An access token is required to request this resource."),
    190: ErrorInfo(401, "Invalid OAuth access token - Cannot parse access token", "Invalid access token."),
    200: ErrorInfo(403, "Permission Denied", "Permission is either not granted or has been removed."),
    80007: ErrorInfo(400, "Rate limit issues", "The WhatsApp Business Account has reached its rate limit.", True),
    130429: ErrorInfo(429, "Rate limit hit", "Cloud API message throughput has been reached.", True),
    131000: ErrorInfo(500, "Something went wrong", "Message failed to send due to an unknown error.", True),
    131008: ErrorInfo(400, "Required parameter is missing", "The request is missing a required parameter."),
    131009: ErrorInfo(400, "Parameter value is not valid", "One or more parameter values are invalid."),
    131016: ErrorInfo(503, "Service unavailable", "A service is temporarily unavailable.", True),
    131021: ErrorInfo(400, "Recipient cannot be sender", "Sender and recipient phone number is the same."),
    131026: ErrorInfo(
        400,
        "Message undeliverable",
        "Unable to deliver message. Reasons can include: the recipient phone number is not a "
        "WhatsApp phone number; the recipient has not accepted the new Terms of Service.",
    ),
    131031: ErrorInfo(400, "Account has been locked", "The business account was restricted or disabled."),
    131047: ErrorInfo(
        400,
        "Re-engagement message",
        "More than 24 hours have passed since the recipient last replied to the sender number.",
    ),
    # sent to a new user beyond the number's messaging limit (simulator/messaging_limit.py)
    131048: ErrorInfo(
        400,
        "Spam rate limit hit",
        "Message failed to send because there are restrictions on how many messages can be sent from this "
        "phone number. This may be because too many previous messages were blocked or flagged as spam.",
    ),
    131049: ErrorInfo(
        400,
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "Meta chose not to deliver this marketing template message.",
    ),
    131050: ErrorInfo(
        400,
        "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages",
        "The recipient opted out of marketing messages from this business.",
    ),
    131051: ErrorInfo(400, "Unsupported message type", "Unsupported message type."),
    131052: ErrorInfo(400, "Media download error", "Unable to download the media sent by the user."),
    131053: ErrorInfo(400, "Media upload error", "Unable to upload the media used in the message."),
    131056: ErrorInfo(
        400,
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from the sender phone number to the same recipient phone number "
        "in a short period of time.",
        True,
    ),
    132000: ErrorInfo(
        400,
        "Number of parameters does not match the expected number of params",
        "The number of variable parameter values does not match the template.",
    ),
    132001: ErrorInfo(
        400,
        "Template name does not exist in the translation",
        "The template does not exist in the specified language or has not been approved.",
    ),
    132005: ErrorInfo(400, "Translated text too long", "Translated text is too long."),
    132007: ErrorInfo(400, "Template Format Character Policy Violated", "Template content violates a policy."),
    132012: ErrorInfo(400, "Template Parameter Format Mismatch", "Parameter values are formatted incorrectly."),
    132015: ErrorInfo(400, "Template is Paused", "The template is paused due to low quality."),
    132016: ErrorInfo(400, "Template is Disabled", "The template has been paused too many times."),
    133004: ErrorInfo(503, "Server temporarily unavailable", "The server is temporarily unavailable.", True),
}


def error_info(code: int) -> ErrorInfo:
    """A code from a configured mix may be one Meta documents but this table lacks."""
    return ERRORS.get(code) or ErrorInfo(400, f"Error {code}", f"Simulated error {code}.")


def is_transient(code: str) -> bool:
    """Transient answers are not replayed for an idempotency key: a retry is a new attempt."""
    return code.isdigit() and error_info(int(code)).transient


def error_body(
    code: int,
    message: str | None = None,
    details: str | None = None,
    subcode: int | None = None,
    fbtrace_id: str = "AsimulatedTrace",
) -> bytes:
    """Meta's envelope. `error_subcode` appears only when Meta sends one (it usually does not)."""
    info = error_info(code)
    error: dict[str, Any] = {
        # Graph API prefixes "(#code)", except on OAuth token errors.
        "message": (message or info.title) if code == 190 else f"(#{code}) {message or info.title}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details or info.details},
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = fbtrace_id
    return json.dumps({"error": error}, separators=(",", ":")).encode()


#: Graph API answers decided before WhatsApp sees the request (token, object, field)
MISSING_TOKEN = "An access token is required to request this resource."
INVALID_TOKEN = "Invalid OAuth access token - Cannot parse access token"
GRAPH_DOCS = "https://developers.facebook.com/docs/graph-api"


def no_object_message(method: str, object_id: str) -> str:
    """Code 100 subcode 33: the same words for "does not exist" and "not this token's"."""
    return (
        f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
        f"missing permissions, or does not support this operation. Please read the Graph API documentation at "
        f"{GRAPH_DOCS}"
    )


def graph_error_body(
    code: int,
    message: str,
    error_type: str = "OAuthException",
    subcode: int | None = None,
    fbtrace_id: str = "AsimulatedTrace",
) -> bytes:
    """The plain Graph API envelope (no `error_data`): what Meta answers for a missing
    (104) or invalid (190) token, an object that does not exist or is not the token's
    (100/33, GraphMethodException), or a field the node lacks (100)."""
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = fbtrace_id
    return json.dumps({"error": error}, separators=(",", ":")).encode()


def accepted_body(to: str, wa_id: str, wamid: str) -> bytes:
    """The 200 answer; `to` is echoed as given (`input`), `wa_id` is its digits.

    Formatted, not json.dumps'd (hot path): `to` was validated as [+]digits and the wamid
    is base64, so neither needs escaping."""
    return (
        f'{{"messaging_product":"whatsapp","contacts":[{{"input":"{to}","wa_id":"{wa_id}"}}],'
        f'"messages":[{{"id":"{wamid}","message_status":"accepted"}}]}}'
    ).encode()


class BadRequest(Exception):
    """A malformed send request: answered 400 with code 100 (or the given code)."""

    def __init__(self, details: str, code: int = 100, message: str | None = None) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.message = message or details
        #: from the request's callback data, set by parse_send: a refused request still
        #: belongs to its campaign's message, which the ledger then counts as rejected
        self.campaign_id: int | None = None
        self.message_id: int | None = None


class TemplateParameter(NamedTuple):
    """One parameter of a template send: its type, its text (a currency's or date's
    `fallback_value`; None for media) and its `parameter_name`, if given."""

    type: str
    text: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class TemplateRequest:
    """The `template` of a send: checked against the number's WABA (template_api.py)."""

    name: str
    language: str
    #: (component type, lower-cased: body, header, ...; its parameters), in request order
    components: tuple[tuple[str, tuple[TemplateParameter, ...]], ...]


@dataclass(frozen=True, slots=True)
class SendMessage:
    """The parts of a valid send request the simulator acts on."""

    to: str
    wa_id: str
    kind: str  # text | template
    #: text body, or template name + language + parameters, for the key of keyless requests
    content: str
    callback_data: str | None
    campaign_id: int | None
    message_id: int | None
    template: TemplateRequest | None = None
    #: the template's body as the recipient reads it, once checked against the WABA
    rendered: str | None = None


_PHONE = re.compile(r"\+?[0-9]{5,15}")


def _field(obj: dict[str, Any], name: str, path: str) -> Any:
    if name not in obj or obj[name] is None:
        raise BadRequest(f"The parameter {path} is required.")
    return obj[name]


def _string(obj: dict[str, Any], name: str, path: str) -> str:
    value = _field(obj, name, path)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Param {path} must be a non-empty string.")
    return value


def _object(obj: dict[str, Any], name: str, path: str) -> dict[str, Any]:
    value = _field(obj, name, path)
    if not isinstance(value, dict):
        raise BadRequest(f"Param {path} must be a JSON object.")
    return value


def parse_send(raw: bytes) -> SendMessage:
    """Validate a send request body; raise BadRequest naming the offending field (and
    carrying the campaign and message of its callback data, for the ledger)."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    callback = body.get("biz_opaque_callback_data")
    campaign_id, message_id = _callback_ids(callback if isinstance(callback, str) else None)
    try:
        return _parse_body(body, callback, campaign_id, message_id)
    except BadRequest as bad:
        bad.campaign_id, bad.message_id = campaign_id, message_id
        raise


def _parse_body(body: dict[str, Any], callback: Any, campaign_id: int | None, message_id: int | None) -> SendMessage:
    if body.get("messaging_product") != "whatsapp":
        raise BadRequest("The parameter messaging_product is required and must be 'whatsapp'.")
    if body.get("recipient_type", "individual") != "individual":
        raise BadRequest("Param recipient_type must be 'individual'.")
    to = _string(body, "to", "to")
    if not _PHONE.fullmatch(to):
        raise BadRequest(f"Param to is not a valid phone number: {to!r}.")
    kind = body.get("type", "text")  # Meta defaults type to text
    if kind == "text":
        text = _object(body, "text", "text")
        content = _string(text, "body", "text['body']")
        if len(content) > 4096:
            raise BadRequest("Param text['body'] must be at most 4096 characters.")
        request = None
    elif kind == "template":
        request = _template(_object(body, "template", "template"))
        texts = [p.text or "" for _, parameters in request.components for p in parameters]
        content = "\x1f".join([request.name, request.language, *texts])
    else:
        raise BadRequest(f"Param type must be one of {{text, template}} in the simulator, got {kind!r}.")
    if callback is not None and (not isinstance(callback, str) or len(callback) > 512):
        raise BadRequest("Param biz_opaque_callback_data must be a string of at most 512 characters.")
    return SendMessage(to, to.lstrip("+"), kind, content, callback, campaign_id, message_id, request)


def _template(template: dict[str, Any]) -> TemplateRequest:
    """The shape of a `template` object; whether the WABA has it, approved and with
    these parameters, is the engine's question (template_api.render_send)."""
    name = _string(template, "name", "template['name']")
    language = _string(_object(template, "language", "template['language']"), "code", "template['language']['code']")
    components = template.get("components", [])
    if not isinstance(components, list):
        raise BadRequest("Param template['components'] must be an array.")
    parsed: list[tuple[str, tuple[TemplateParameter, ...]]] = []
    for i, component in enumerate(components):
        if not isinstance(component, dict) or not isinstance(component.get("type"), str):
            raise BadRequest(f"Param template['components'][{i}]['type'] is required.")
        parameters = component.get("parameters", [])
        if not isinstance(parameters, list):
            raise BadRequest(f"Param template['components'][{i}]['parameters'] must be an array.")
        parsed.append((component["type"].lower(), tuple(_parameter(p, i, j) for j, p in enumerate(parameters))))
    return TemplateRequest(name, language, tuple(parsed))


def _parameter(parameter: Any, i: int, j: int) -> TemplateParameter:
    where = f"template['components'][{i}]['parameters'][{j}]"
    if not isinstance(parameter, dict) or not isinstance(parameter.get("type"), str):
        raise BadRequest(f"Param {where}['type'] is required.")
    kind = parameter["type"]
    name = parameter.get("parameter_name")
    if name is not None and not isinstance(name, str):
        raise BadRequest(f"Param {where}['parameter_name'] must be a string.")
    if kind == "text":
        if not isinstance(parameter.get("text"), str):
            raise BadRequest(f"Param {where}['text'] is required.")
        return TemplateParameter(kind, parameter["text"], name)
    if kind in ("currency", "date_time"):
        # What a client without the locale's formatting shows (Meta requires it).
        value = parameter.get(kind)
        fallback = value.get("fallback_value") if isinstance(value, dict) else None
        if not isinstance(fallback, str):
            raise BadRequest(f"Param {where}['{kind}']['fallback_value'] is required.")
        return TemplateParameter(kind, fallback, name)
    return TemplateParameter(kind, None, name)


def _callback_ids(value: str | None) -> tuple[int | None, int | None]:
    """`c<campaign>:m<message>[:r<round>]` (domain/sending.callback_data); anything else is opaque."""
    if not value or not value.startswith("c") or ":m" not in value:
        return None, None
    campaign, _, message = value[1:].partition(":m")
    try:
        return int(campaign), int(message.partition(":r")[0])
    except ValueError:
        return None, None


# Shared, never mutated: serialised as they are, built once instead of per status.
# Per-message pricing (PMP) since July 2025; Graph API v24.0 and later send no
# `conversation` object in status webhooks (docs/STACK.md).
_PRICING = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}


def pricing_object(category: str) -> dict[str, Any]:
    """A status's `pricing` for a message billed in `category` (marketing, utility,
    authentication, ...): billable, per-message pricing."""
    return {"billable": True, "pricing_model": "PMP", "type": "regular", "category": category}


def status_object(
    wamid: str,
    status: str,
    timestamp: int,
    recipient_id: str,
    callback_data: str | None,
    error_code: int | None = None,
    pricing: dict[str, Any] | None = _PRICING,
) -> dict[str, Any]:
    """One entry of `value.statuses`, as Meta sends it (`pricing` on sent and delivered,
    since receivers must tolerate it; `errors` on failed only)."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(timestamp),
        "recipient_id": recipient_id,
    }
    if status in ("sent", "delivered") and pricing is not None:
        item["pricing"] = pricing
    if callback_data is not None:
        item["biz_opaque_callback_data"] = callback_data
    if error_code is not None:
        info = error_info(error_code)
        item["errors"] = [
            {
                "code": error_code,
                "title": info.title,
                "message": info.title,
                "error_data": {"details": info.details},
                "href": DOCS,
            }
        ]
    return item


def change_body(
    waba_id: str, display_phone_number: str, phone_number_id: str, field: str, value: dict[str, Any]
) -> bytes:
    """One change of webhook field `field` (messages, user_preferences) in one POST: its
    `value` with the number's metadata first, as Meta writes it."""
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "changes": [
                    {
                        "field": field,
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": display_phone_number,
                                "phone_number_id": phone_number_id,
                            },
                        }
                        | value,
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def account_change_body(waba_id: str, field: str, value: dict[str, Any], timestamp: int) -> bytes:
    """One change of a field about the account itself (`message_template_status_update`):
    no number's metadata, the entry's `time` (MD/webhooks/reference/message_template_status_update)."""
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "time": timestamp, "changes": [{"value": value, "field": field}]}],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def inbound_text_value(wa_id: str, name: str, message_id: str, timestamp: int, body: str) -> dict[str, Any]:
    """`value` of a `messages` change carrying one inbound text message
    (MD/webhooks/reference/messages/text)."""
    return {
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [
            {"from": wa_id, "id": message_id, "timestamp": str(timestamp), "type": "text", "text": {"body": body}}
        ],
    }


def user_preferences_value(wa_id: str, value: str, timestamp: int, category: str, detail: str | None) -> dict[str, Any]:
    """`value` of a `user_preferences` change: the user stopped or resumed a category of
    messages in WhatsApp (MD/webhooks/reference/user_preferences)."""
    item: dict[str, Any] = {"wa_id": wa_id, "category": category, "value": value, "timestamp": timestamp}
    if detail:
        item["detail"] = detail
    return {"contacts": [{"wa_id": wa_id}], "user_preferences": [item]}


def webhook_body(
    waba_id: str, display_phone_number: str, phone_number_id: str, statuses: list[dict[str, Any]]
) -> bytes:
    """A batch of statuses in one POST: one entry, one change, as Meta batches them."""
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": display_phone_number,
                                "phone_number_id": phone_number_id,
                            },
                            "statuses": statuses,
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def signature(app_secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256` value: HMAC-SHA256 of the raw body with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
