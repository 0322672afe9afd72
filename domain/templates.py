"""Message bodies: `{{name}}` placeholders filled from each recipient's variables."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def placeholders(body: str) -> tuple[str, ...]:
    """The distinct placeholder names of `body`, in order of first appearance."""
    return tuple(dict.fromkeys(PLACEHOLDER.findall(body)))


def missing_variables(names: tuple[str, ...], variables: Mapping[str, object]) -> tuple[str, ...]:
    """Names a recipient lacks. A null or empty value counts as missing: it would render
    as a gap in the message the customer receives."""
    return tuple(n for n in names if variables.get(n) in (None, ""))


def render(body: str, variables: Mapping[str, object]) -> str:
    """Fill `body`; callers check `missing_variables` first (the DRAFT exit guard does)."""
    return PLACEHOLDER.sub(lambda m: str(variables.get(m.group(1), "")), body)


def length_parts(body: str) -> tuple[int, dict[str, int]]:
    """A rendered body is `fixed + sum(count[name] * len(value))` characters long: the
    body's length without its placeholders, and how often each name appears."""
    return len(PLACEHOLDER.sub("", body)), dict(Counter(PLACEHOLDER.findall(body)))


# --- WhatsApp message templates (the Cloud API's registry) --------------------------

APPROVED = "APPROVED"
#: statuses a status webhook can move a template to that stop its sends
STOPPING = {"PAUSED": "paused", "DISABLED": "disabled", "REJECTED": "rejected"}
#: send errors that mean the template was stopped: the campaign pauses (not fails),
#: to go on with RESUME once the template is approved again
PAUSING_CODES = {"132015": "paused", "132016": "disabled"}


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """A template as the Cloud API lists it, reduced to what sending needs."""

    meta_id: str
    name: str
    language: str
    status: str
    category: str
    parameter_format: str  # POSITIONAL or NAMED
    body: str
    #: the body's parameters in order: "1", "2", ... or the names
    parameters: tuple[str, ...]


def template_parameters(body: str, parameter_format: str) -> tuple[str, ...]:
    """A BODY text's parameters: positional ones numbered in order ({{1}}, {{2}}), named
    ones in order of first appearance."""
    found = placeholders(body)
    if parameter_format.upper() == "POSITIONAL":
        return tuple(sorted((p for p in found if p.isdigit()), key=int))
    return found


def parse_template(raw: Mapping[str, object]) -> TemplateInfo | None:
    """One entry of `GET /{waba-id}/message_templates`, or None when it lacks what a
    template must have (a name and a language)."""
    name, language = raw.get("name"), raw.get("language")
    if not isinstance(name, str) or not isinstance(language, str) or not name or not language:
        return None
    body = ""
    components = raw.get("components")
    for component in components if isinstance(components, list) else ():
        if isinstance(component, dict) and str(component.get("type", "")).upper() == "BODY":
            text = component.get("text")
            body = text if isinstance(text, str) else ""
    fmt = str(raw.get("parameter_format") or "POSITIONAL").upper()
    return TemplateInfo(
        meta_id=str(raw.get("id") or ""),
        name=name,
        language=language,
        status=str(raw.get("status") or "").upper(),
        category=str(raw.get("category") or "").upper(),
        parameter_format=fmt,
        body=body,
        parameters=template_parameters(body, fmt),
    )
