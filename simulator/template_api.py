"""What the Cloud API does with a WABA's templates: check and render sends, list them
on the Graph API, and say what changed in a `message_template_status_update` webhook.

A template send is refused as Meta refuses it (docs/STACK.md, "Templates"): unknown in
that language or not approved 132001, paused 132015, disabled 132016, a wrong number of
parameters 132000, a parameter of another format 132012; a NAMED template's parameter
without `parameter_name` is code 100 "Parameter name is missing or empty". What goes
out is the body with its parameters filled in, which the ledger keeps.
"""

from __future__ import annotations

import base64
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from simulator.config import SimulatorConfig
from simulator.numbers import NumberRegistry, PhoneNumber, Waba
from simulator.templates import CATEGORIES, STATUSES, Template, TemplateBook, samples
from simulator.webhooks import WebhookDispatcher
from simulator.wire import BadRequest, SendMessage, TemplateParameter, TemplateRequest

#: the node type a "nonexisting field" error names (our reading of Graph's naming)
NODE_TYPE = "WhatsAppBusinessHSM"
FIELDS = (
    "id",
    "name",
    "language",
    "status",
    "category",
    "parameter_format",
    "components",
    "quality_score",
    "rejected_reason",
)
#: what `GET .../message_templates` answers without `fields` (plus `id`)
DEFAULT_FIELDS = ("name", "parameter_format", "components", "language", "status", "category")
DEFAULT_LIMIT = 25
#: a larger `limit` is cut to this (our reading: Graph caps page sizes silently)
MAX_LIMIT = 1000
#: parameter types whose value is text in a body or text header
TEXT_TYPES = ("text", "currency", "date_time")
FORMAT_MISMATCH = "Parameter format does not match format in the created template"

_FIELD_LIST = re.compile(r",(?![^{]*\})")


class GraphParamError(ValueError):
    """A listing query the Graph API refuses with code 100 (the message is Graph's)."""


# ------------------------------------------------------------------ sends


def render_send(book: TemplateBook, request: TemplateRequest) -> tuple[Template, str]:
    """The template a send names and its body as the recipient reads it, or BadRequest
    with Meta's code."""
    template = book.get(request.name, request.language)
    if template is None:
        raise BadRequest(
            f"template name ({request.name}) does not exist in {request.language}",
            code=132001,
            message="Template name does not exist in the translation",
        )
    if template.status == "PAUSED":
        raise BadRequest(
            "Template is paused due to low quality so it cannot be sent in a template message.",
            code=132015,
            message="Template is Paused",
        )
    if template.status == "DISABLED":
        raise BadRequest(
            "Template has been paused too many times due to low quality and is now permanently disabled.",
            code=132016,
            message="Template is Disabled",
        )
    if template.status != "APPROVED":
        raise BadRequest(
            f"template name ({request.name}) in {request.language} is {template.status}, not APPROVED",
            code=132001,
            message="Template name does not exist in the translation",
        )
    given: dict[str, list[TemplateParameter]] = {}
    for kind, parameters in request.components:
        given.setdefault(kind, []).extend(parameters)
    for component in template.components:
        if component.variables:
            given.setdefault(component.type.lower(), [])
    values = {kind: _values(template, kind, parameters) for kind, parameters in given.items()}
    return template, template.body.render(values.get("body", {}))


def _values(template: Template, kind: str, parameters: list[TemplateParameter]) -> dict[str, str]:
    """The placeholder values a send gives one component, checked against the template."""
    expected = template.variables(kind)
    for parameter in parameters:
        if parameter.type not in TEXT_TYPES:
            raise BadRequest(
                f"{kind}: Format mismatch, expected TEXT, received {parameter.type.upper()}",
                code=132012,
                message=FORMAT_MISMATCH,
            )
    named = template.parameter_format == "NAMED"
    if named and any(not parameter.name for parameter in parameters):
        # Meta's answer when a NAMED template's parameter has no name (docs/STACK.md)
        raise BadRequest("Parameter name is missing or empty", code=100, message="Invalid parameter")
    if not named and any(parameter.name is not None for parameter in parameters):
        raise BadRequest(
            f"{kind}: Format mismatch, expected POSITIONAL parameters, received NAMED (parameter_name)",
            code=132012,
            message=FORMAT_MISMATCH,
        )
    if len(parameters) != len(expected):
        raise BadRequest(
            f"{kind}: number of localizable_params ({len(parameters)}) does not match the expected number of "
            f"params ({len(expected)})",
            code=132000,
            message="Number of parameters does not match the expected number of params",
        )
    if not named:
        return {str(i): str(parameter.text) for i, parameter in enumerate(parameters, 1)}
    values: dict[str, str] = {}
    for parameter in parameters:
        name = str(parameter.name)
        problem = "is given twice" if name in values else None if name in expected else "is not the template's"
        if problem:
            raise BadRequest(
                f"{kind}: parameter name ({name}) {problem} (expected: {', '.join(expected)})",
                code=132000,
                message="Number of parameters does not match the expected number of params",
            )
        values[name] = str(parameter.text)
    return values


# ------------------------------------------------------------------ listing


def cursor(template: Template) -> str:
    """An opaque Graph-like cursor (base64 of the template id)."""
    return base64.urlsafe_b64encode(template.id.encode()).decode().rstrip("=")


def _choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...] | None) -> set[str] | None:
    raw = params.get(name)
    if not raw:
        return None
    values = {value.strip() for value in raw.split(",") if value.strip()}
    for value in sorted(values):
        if allowed is not None and value not in allowed:
            raise GraphParamError(f"(#100) Param {name} must be one of {{{', '.join(allowed)}}}, got {value}")
    return values


def list_page(book: TemplateBook, params: Mapping[str, str], link: Callable[[dict[str, str]], str]) -> dict[str, Any]:
    """`GET /{version}/{waba_id}/message_templates` with `fields`, `limit`, `after` or
    `before`, and the filters `name` (part of it), `status`, `language`, `category`
    (comma lists); `link(query)` is the URL of this listing with `query` set, for
    `paging.next` and `paging.previous`."""
    asked = [part.split("{", 1)[0].strip() for part in _FIELD_LIST.split(params.get("fields") or "")]
    names = [name for name in asked if name] or list(DEFAULT_FIELDS)
    for name in names:
        if name not in FIELDS:
            raise GraphParamError(f"(#100) Tried accessing nonexisting field ({name}) on node type ({NODE_TYPE})")
    try:
        limit = min(int(params.get("limit") or DEFAULT_LIMIT), MAX_LIMIT)
    except ValueError:
        limit = 0
    if limit < 1:
        raise GraphParamError(f"(#100) Param limit must be a positive integer, got {params.get('limit')}")
    statuses = _choice(params, "status", STATUSES)
    categories = _choice(params, "category", CATEGORIES)
    languages = _choice(params, "language", None)
    part = (params.get("name") or "").lower()
    chosen = [
        t
        for t in book
        if (statuses is None or t.status in statuses)
        and (categories is None or t.category in categories)
        and (languages is None or t.language in languages)
        and part in t.name
    ]
    start, stop = 0, limit
    for side in ("after", "before"):
        if value := params.get(side):
            at = next((i for i, t in enumerate(chosen) if cursor(t) == value), None)
            if at is None:
                raise GraphParamError(f"(#100) The {side} cursor is not valid")
            start, stop = (at + 1, at + 1 + limit) if side == "after" else (max(0, at - limit), at)
            break
    page = chosen[start:stop]
    answer: dict[str, Any] = {"data": [t.graph(names) for t in page]}
    if page:
        paging: dict[str, Any] = {"cursors": {"before": cursor(page[0]), "after": cursor(page[-1])}}
        if start + len(page) < len(chosen):
            paging["next"] = link({"limit": str(limit), "after": cursor(page[-1])})
        if start > 0:
            paging["previous"] = link({"limit": str(limit), "before": cursor(page[0])})
        answer["paging"] = paging
    if "total_count" in (params.get("summary") or ""):
        answer["summary"] = {"total_count": len(chosen)}
    return answer


# ------------------------------------------------------------------ the desk


def _other_info(before: str, after: str) -> dict[str, str] | None:
    """The `other_info` Meta adds to a pause or an unpause (None for other changes)."""
    if after == "PAUSED":
        # Meta's first pause lasts 3 hours (a second one 6; then the template is disabled)
        return {
            "title": "FIRST_PAUSE",
            "description": "Your WhatsApp message template has been paused for 3 hours because it had issues.",
        }
    if before == "PAUSED" and after == "APPROVED":
        return {"title": "UNPAUSE", "description": "Your WhatsApp message template has been unpaused."}
    return None


def status_update_value(
    template: Template, event: str, reason: str | None, info: Mapping[str, str] | None, now: int
) -> dict[str, Any]:
    """`value` of a `message_template_status_update` change
    (MD/webhooks/reference/message_template_status_update): the template id is an integer
    there, a string in listings."""
    value: dict[str, Any] = {
        "event": event,
        "message_template_id": int(template.id),
        "message_template_name": template.name,
        "message_template_language": template.language,
        "reason": reason,
        "message_template_category": template.category,
    }
    if event == "DISABLED":
        value["disable_info"] = {"disable_date": now}
    if info:
        value["other_info"] = dict(info)
    return value


class TemplateDesk:
    """The templates of every WABA the simulator serves: seeded from the config, checked on
    sends, read on the Graph API within an hourly budget, changed by the control API
    with a signed `message_template_status_update` webhook for each change."""

    def __init__(self, config: SimulatorConfig, numbers: NumberRegistry, webhooks: WebhookDispatcher) -> None:
        self.numbers = numbers
        self.webhooks = webhooks
        self.per_hour = config.templates_rate_limit_per_hour
        #: WABA id -> monotonic times of its listings in the last hour
        self._reads: dict[str, deque[float]] = {}
        first = numbers.waba(config.waba_id)
        assert first is not None  # the config's number is always served
        if config.sample_templates:
            for template in samples(config.waba_id):
                first.templates.put(template)
        for template in config.templates:
            waba = numbers.waba(template.waba_id)
            assert waba is not None  # the config checked that a number has it
            waba.templates.put(template)

    def reset(self) -> None:
        """A new hour for every WABA's listing budget (the templates stay: set-up)."""
        self._reads.clear()

    def allow_read(self, waba_id: str) -> bool:
        """Whether one more listing fits in the WABA's last hour (and count it)."""
        if self.per_hour is None:
            return True
        now = time.monotonic()
        window = self._reads.setdefault(waba_id, deque())
        while window and window[0] <= now - 3600.0:
            window.popleft()
        if len(window) >= self.per_hour:
            return False
        window.append(now)
        return True

    def checked(self, number: PhoneNumber, message: SendMessage) -> SendMessage:
        """A template send checked against the number's WABA, with its body rendered;
        BadRequest (carrying the message's campaign) with Meta's code otherwise."""
        waba = self.numbers.waba(number.waba_id)
        assert waba is not None and message.template is not None
        try:
            _, body = render_send(waba.templates, message.template)
        except BadRequest as bad:
            bad.campaign_id, bad.message_id = message.campaign_id, message.message_id
            raise
        return replace(message, rendered=body)

    def change_status(
        self,
        waba: Waba,
        name: str,
        language: str,
        status: str,
        reason: str | None = "NONE",
        info: Mapping[str, str] | None = None,
        event: str | None = None,
        post: bool = True,
    ) -> tuple[Template, bool] | None:
        """Give a template a new status, as Meta does when it approves, rejects, pauses or
        disables it; sends refuse it from now on unless APPROVED. With `post`, a webhook
        tells the receiver (`event` defaults to the status; `other_info` to Meta's for a
        pause or an unpause). The changed template and whether a webhook was posted, or
        None when the WABA has no such template."""
        known = waba.templates.get(name, language)
        if known is None:
            return None
        changed = waba.templates.set_status(name, language, status, reason or "NONE")
        assert changed is not None
        info = info if info is not None else _other_info(known.status, status)
        return changed, post and self._post(waba, changed, event or status, reason, info)

    def remove(self, waba: Waba, name: str, language: str, post: bool = True) -> tuple[Template, bool] | None:
        """Delete a template (sends of it then answer 132001); with `post`, a DELETED webhook."""
        removed = waba.templates.remove(name, language)
        if removed is None:
            return None
        return removed, post and self._post(waba, removed, "DELETED", "NONE", None)

    def _post(
        self, waba: Waba, template: Template, event: str, reason: str | None, info: Mapping[str, str] | None
    ) -> bool:
        number = next(iter(waba.numbers.values()))  # counted under one of the WABA's numbers
        value = status_update_value(template, event, reason, info, int(time.time()))
        return self.webhooks.post_account_change(number, "message_template_status_update", value)
