"""Validation of a campaign's editable settings and of the reason given for a status
change; errors name the input field."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from domain.delivery import parse_window
from domain.errors import DomainError, ValidationFailed, collect
from domain.timezones import is_zone

MAX_NAME = 200
MAX_BODY = 4096  # WhatsApp's text message limit
MAX_SEND_RATE = 10_000
MAX_REASON = 1000  # cancelCampaign's reason, shown in the history and to watchers
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")

#: editable fields, in the contract's camelCase, mapped to model attribute names
FIELDS: dict[str, str] = {
    "name": "name",
    "body": "body",
    "templateName": "template_name",
    "templateLanguage": "template_language",
    "sendRate": "send_rate",
    "failureThreshold": "failure_threshold",
    "failureSampleSize": "failure_sample_size",
    "timeZone": "time_zone",
    "sendWindow": "send_window",
}


@dataclass(frozen=True)
class CampaignFields:
    """Only the fields given; `None` values are meaningful (e.g. sendRate null)."""

    values: dict[str, Any]


def validate_fields(given: dict[str, Any], *, creating: bool, prefix: str = "input") -> CampaignFields:
    """Check `given` (camelCase keys, only those supplied) and return model values."""
    out: dict[str, Any] = {}
    errors: list[DomainError] = []  # every bad field at once: a form shows them all

    def fail(key: str, message: str) -> None:
        errors.append(ValidationFailed(message, (prefix, key)))

    for key, value in given.items():
        attr = FIELDS[key]
        if key == "name":
            if value is None or not str(value).strip():
                fail(key, "name must not be empty.")
            value = str(value).strip()
            if len(value) > MAX_NAME:
                fail(key, f"name is at most {MAX_NAME} characters.")
            elif not storable(value):
                fail(key, "name contains an invalid character (a lone UTF-16 surrogate).")
        elif key == "body":
            if value is None or not str(value).strip():
                fail(key, "body must not be empty.")
            elif len(value) > MAX_BODY:
                fail(key, f"body is at most {MAX_BODY} characters.")
            elif not storable(value):
                fail(key, "body contains an invalid character (a lone UTF-16 surrogate).")
        elif key == "templateName":
            if value is not None and not _TEMPLATE_NAME.fullmatch(value):
                fail(key, "templateName is lowercase letters, digits and underscores.")
        elif key == "templateLanguage":
            if value is not None and not _LANGUAGE.fullmatch(value):
                fail(key, "templateLanguage is a language code such as en or en_US.")
        elif key == "sendRate":
            if value is not None and not 1 <= value <= MAX_SEND_RATE:
                fail(key, f"sendRate is between 1 and {MAX_SEND_RATE} messages per second.")
        elif key == "failureThreshold":
            if value is not None and (math.isnan(value) or not 0 < value <= 1):
                fail(key, "failureThreshold is a fraction above 0 and at most 1, or null.")
        elif key == "failureSampleSize":
            if value is None or not 1 <= value <= 1_000_000:
                fail(key, "failureSampleSize is between 1 and 1,000,000.")
        elif key == "timeZone":
            if value is not None:
                value = str(value).strip()
                if not is_zone(value):
                    fail(key, f"timeZone {value!r} is not an IANA time zone (for example Europe/Paris).")
        elif key == "sendWindow":
            # a mapping of days, start, end, timeZone (or None: no window), stored as JSON
            if value is not None:
                try:
                    value = parse_window(
                        value["days"], value["start"], value["end"], value.get("timeZone"), (prefix, key)
                    ).to_json()
                except ValidationFailed as error:
                    errors.append(error)
        out[attr] = value
    if creating:
        for required in ("name", "body"):
            if required not in given:
                fail(required, f"{required} is required.")
    template, language = out.get("template_name"), out.get("template_language")
    bad_template = any(e.field == (prefix, "templateName") for e in errors)
    if creating and template and not language and not bad_template:
        fail("templateLanguage", "templateLanguage is required with templateName.")
    collect(errors)
    return CampaignFields(out)


def validate_reason(reason: str | None) -> str | None:
    """Check a status change's free-text reason (cancelCampaign's optional `reason`): at
    most MAX_REASON characters, storable. Returns it unchanged; raises ValidationFailed
    naming the field `reason`."""
    if reason is None:
        return None
    if len(reason) > MAX_REASON:
        raise ValidationFailed(f"reason is at most {MAX_REASON} characters.", ("reason",))
    if not storable(reason):
        raise ValidationFailed("reason contains an invalid character (a lone UTF-16 surrogate).", ("reason",))
    return reason


def storable(text: str) -> bool:
    """Whether a database can hold `text`: JSON's "\\ud800" decodes to a lone surrogate,
    which has no UTF-8 form (the insert would fail as an internal error)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
