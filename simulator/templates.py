"""Message templates of a WhatsApp Business Account, as Meta keeps them.

A template is a name in a language (`order_update` in `en_US`) with a status (only an
APPROVED one may be sent), a category (MARKETING, UTILITY, AUTHENTICATION), a parameter
format (POSITIONAL `{{1}}` or NAMED `{{first_name}}`) and components: a BODY, and
optionally a text HEADER and a FOOTER. Every WABA holds Meta's sample `hello_world`;
the config's WABA also holds `SAMPLES` a newcomer can send at once. How sends, listings
and status changes use them is simulator/template_api.py.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

#: a template's `status` as the Graph API lists it; only APPROVED ones are sent
STATUSES = (
    "APPROVED",
    "PENDING",
    "REJECTED",
    "PAUSED",
    "DISABLED",
    "IN_APPEAL",
    "PENDING_DELETION",
    "DELETED",
    "LIMIT_EXCEEDED",
    "ARCHIVED",
)
#: `event` of a `message_template_status_update` webhook: the statuses and a few more
EVENTS = (*STATUSES, "FLAGGED", "REINSTATED", "LOCKED", "UNARCHIVED")
CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
FORMATS = ("POSITIONAL", "NAMED")
#: Meta's length limits of a template's texts
TEXT_LIMITS = {"BODY": 1024, "HEADER": 60, "FOOTER": 60}

_NAME = re.compile(r"[a-z0-9_]{1,512}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2,4})?")
_PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
_POSITION = re.compile(r"[1-9][0-9]*")
_PARAMETER_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_KNOWN = {"waba_id", "id", "name", "language", "category", "status", "parameter_format", "components", "body"}


class TemplateConflict(ValueError):
    """An addition that contradicts a template already there under its name and language."""


@dataclass(frozen=True, slots=True)
class Component:
    """One BODY, HEADER (text) or FOOTER of a template."""

    type: str
    text: str
    #: its placeholders: "1", "2", ... (POSITIONAL, in order) or names in order of first use
    variables: tuple[str, ...]
    #: Meta's `example` object as given (body_text, body_text_named_params, header_text)
    example: Any = None

    def to_json(self) -> dict[str, Any]:
        """As the Graph API lists it."""
        item: dict[str, Any] = {"type": self.type}
        if self.type == "HEADER":
            item["format"] = "TEXT"
        item["text"] = self.text
        if self.example is not None:
            item["example"] = self.example
        return item

    def render(self, values: Mapping[str, str]) -> str:
        """The text with each placeholder replaced by its value (what the recipient reads)."""
        if not self.variables:
            return self.text
        return _PLACEHOLDER.sub(lambda found: values[found.group(1)], self.text)


def _variables(text: str, parameter_format: str, where: str) -> tuple[str, ...]:
    names: list[str] = []
    pattern = _POSITION if parameter_format == "POSITIONAL" else _PARAMETER_NAME
    for found in _PLACEHOLDER.finditer(text):
        token = found.group(1)
        if not pattern.fullmatch(token):
            kind = "a number from 1" if parameter_format == "POSITIONAL" else "lower-case letters, digits and _"
            raise ValueError(f"{where}: {{{{{token}}}}} is not a {parameter_format} parameter ({kind})")
        if token not in names:
            names.append(token)
    if parameter_format == "POSITIONAL":
        numbers = sorted(int(name) for name in names)
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"{where}: positional parameters must be {{{{1}}}} to {{{{{len(numbers)}}}}}, got {names}")
        return tuple(str(n) for n in numbers)
    return tuple(names)


def _component(data: Any, where: str, parameter_format: str) -> Component:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a JSON object")
    unknown = sorted(set(data) - {"type", "format", "text", "example"})
    if unknown:
        raise ValueError(f"{where}: unknown field {unknown[0]!r} (buttons are not simulated)")
    kind = str(data.get("type", "")).upper()
    if kind not in TEXT_LIMITS:
        raise ValueError(f"{where}.type must be BODY, HEADER or FOOTER, got {data.get('type')!r}")
    if kind == "HEADER" and str(data.get("format", "TEXT")).upper() != "TEXT":
        raise ValueError(f"{where}.format: only TEXT headers are simulated, got {data.get('format')!r}")
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}.text must be a non-empty string")
    if len(text) > TEXT_LIMITS[kind]:
        raise ValueError(f"{where}.text must be at most {TEXT_LIMITS[kind]} characters")
    variables = _variables(text, parameter_format, f"{where}.text")
    if kind == "FOOTER" and variables:
        raise ValueError(f"{where}: a FOOTER takes no parameters")
    if kind == "HEADER" and len(variables) > 1:
        raise ValueError(f"{where}: a HEADER takes at most one parameter")
    return Component(kind, text, variables, data.get("example"))


def template_id(waba_id: str, name: str, language: str) -> str:
    """A Meta-like numeric id, the same for the same WABA, name and language on every run."""
    digest = hashlib.blake2b(f"{waba_id}:{name}:{language}".encode(), digest_size=8).digest()
    return str(10**15 + int.from_bytes(digest, "big") % (9 * 10**15))


@dataclass(frozen=True, slots=True)
class Template:
    """One template in one language, as its WABA holds it."""

    waba_id: str
    id: str
    name: str
    language: str
    category: str
    parameter_format: str
    components: tuple[Component, ...]
    status: str = "APPROVED"
    #: why it was rejected while REJECTED, "NONE" otherwise (the Graph field `rejected_reason`)
    rejected_reason: str = "NONE"

    @classmethod
    def from_json(cls, data: Any, waba_id: str) -> Template:
        """A template from the control API's or SIMULATOR_TEMPLATES' JSON: Meta's shape
        (name, language, category, components, and optionally status, parameter_format,
        id), or `body` instead of components; `waba_id` defaults to the one given. A
        wrong or unknown field is named."""
        if not isinstance(data, Mapping):
            raise ValueError("a template is a JSON object")
        unknown = sorted(set(data) - _KNOWN)
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r} (known: {', '.join(sorted(_KNOWN))})")
        waba = str(data.get("waba_id") or waba_id)
        name, language = data.get("name"), data.get("language")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"name must be lower-case letters, digits and _ (up to 512), got {name!r}")
        if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
            raise ValueError(f"language must be a code like en or en_US, got {language!r}")
        category = str(data.get("category", "")).upper()
        if category not in CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)}, got {data.get('category')!r}")
        status = str(data.get("status", "APPROVED")).upper()
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {data.get('status')!r}")
        parameter_format = str(data.get("parameter_format", "POSITIONAL")).upper()
        if parameter_format not in FORMATS:
            raise ValueError(f"parameter_format must be POSITIONAL or NAMED, got {data.get('parameter_format')!r}")
        if ("body" in data) == ("components" in data):
            raise ValueError("give either components or body (the BODY text)")
        raw = [{"type": "BODY", "text": data["body"]}] if "body" in data else data["components"]
        if not isinstance(raw, list):
            raise ValueError("components must be a JSON list")
        components = tuple(_component(item, f"components[{i}]", parameter_format) for i, item in enumerate(raw))
        kinds = [c.type for c in components]
        if kinds.count("BODY") != 1 or any(kinds.count(kind) > 1 for kind in kinds):
            raise ValueError("components: exactly one BODY, at most one HEADER and one FOOTER")
        given_id = data.get("id")
        if given_id is not None and not (isinstance(given_id, str) and given_id.isdigit()):
            raise ValueError(f"id must be a string of digits, got {given_id!r}")
        identity = given_id or template_id(waba, name, language)
        return cls(waba, identity, name, language, category, parameter_format, components, status)

    @property
    def body(self) -> Component:
        return next(c for c in self.components if c.type == "BODY")

    def variables(self, kind: str) -> tuple[str, ...]:
        """The placeholders of the component a send names `kind` (body, header), if any."""
        return next((c.variables for c in self.components if c.type.lower() == kind), ())

    def node(self) -> dict[str, Any]:
        """Every field of the template as the Graph API serves it."""
        return {
            "id": self.id,
            "name": self.name,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "parameter_format": self.parameter_format,
            "components": [c.to_json() for c in self.components],
            "quality_score": {"score": "UNKNOWN"},
            "rejected_reason": self.rejected_reason,
        }

    def graph(self, names: list[str]) -> dict[str, Any]:
        """The asked fields, then `id` (Graph always adds it)."""
        node = self.node()
        return {name: node[name] for name in names if name != "id"} | {"id": self.id}

    def to_json(self) -> dict[str, Any]:
        """The control API's view: every Graph field and the WABA."""
        return {"waba_id": self.waba_id} | self.node()


HELLO_WORLD: dict[str, Any] = {
    "name": "hello_world",
    "language": "en_US",
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
        {
            "type": "BODY",
            "text": "Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp "
            "message notification from the Cloud API, hosted by Meta. Thank you for taking the time to test with us.",
        },
        {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"},
    ],
}
#: approved samples of the config's WABA: positional marketing in two languages, named utility
SAMPLES: tuple[dict[str, Any], ...] = (
    {
        "name": "spring_sale",
        "language": "en_US",
        "category": "MARKETING",
        "components": [
            {
                "type": "BODY",
                "text": "Hi {{1}}, our spring sale is on: {{2}} off everything until Sunday.",
                "example": {"body_text": [["Ada", "20%"]]},
            },
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
        ],
    },
    {
        "name": "spring_sale",
        "language": "es",
        "category": "MARKETING",
        "components": [
            {
                "type": "BODY",
                "text": "Hola {{1}}, llegan las rebajas de primavera: {{2}} de descuento en todo hasta el domingo.",
                "example": {"body_text": [["Ada", "20%"]]},
            }
        ],
    },
    {
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "parameter_format": "NAMED",
        "components": [
            {
                "type": "BODY",
                "text": "Hi {{first_name}}, your order {{order_id}} is on its way.",
                "example": {
                    "body_text_named_params": [
                        {"param_name": "first_name", "example": "Ada"},
                        {"param_name": "order_id", "example": "A-1042"},
                    ]
                },
            }
        ],
    },
)


def samples(waba_id: str) -> tuple[Template, ...]:
    """`SAMPLES` as templates of `waba_id`."""
    return tuple(Template.from_json(data, waba_id) for data in SAMPLES)


class TemplateBook:
    """One WABA's templates by name and language, in the order they were added; it starts
    with Meta's `hello_world`, as every new account does."""

    def __init__(self, waba_id: str) -> None:
        self.waba_id = waba_id
        self._templates: dict[tuple[str, str], Template] = {}
        self.put(Template.from_json(HELLO_WORLD, waba_id))

    def __iter__(self) -> Iterator[Template]:
        return iter(list(self._templates.values()))

    def __len__(self) -> int:
        return len(self._templates)

    def get(self, name: str, language: str) -> Template | None:
        return self._templates.get((name, language))

    def add(self, template: Template) -> bool:
        """Add a template (True); the same one again changes nothing (False); another one
        under a name and language already there is a conflict."""
        known = self._templates.get((template.name, template.language))
        if known is not None:
            if known == template:
                return False
            raise TemplateConflict(f"{template.name} ({template.language}) is already there with other details")
        self.put(template)
        return True

    def put(self, template: Template) -> None:
        """Add or replace (the config's templates replace samples of the same name)."""
        if template.waba_id != self.waba_id:
            raise ValueError(f"template {template.name} belongs to WABA {template.waba_id}, not {self.waba_id}")
        self._templates[(template.name, template.language)] = template

    def remove(self, name: str, language: str) -> Template | None:
        return self._templates.pop((name, language), None)

    def set_status(self, name: str, language: str, status: str, reason: str = "NONE") -> Template | None:
        """Give a template a new status (None if there is none such); a rejection keeps its reason."""
        known = self._templates.get((name, language))
        if known is None:
            return None
        changed = replace(known, status=status, rejected_reason=reason if status == "REJECTED" else "NONE")
        self._templates[(name, language)] = changed
        return changed
