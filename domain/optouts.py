"""Opt-outs: the phones a workspace must not message, where each came from, and the
stop keywords that make an inbound message one. Pure: no I/O.

An opt-out is learned from four sources (OptOutSource) and honoured when a message is
claimed for sending (services/sending_store.py): a PENDING message to an opted-out phone
fails `opted_out` (domain.messages.OPTED_OUT_CODE) without a provider call, also in a
campaign already running.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from enum import StrEnum

from domain.errors import DomainError, ValidationFailed, collect


class OptOutSource(StrEnum):
    """Where an opt-out came from."""

    #: added through the API (addOptOuts) or the CSV import of the suppression list
    MANUAL = "MANUAL"
    #: a send answered, or a status webhook failed, with WhatsApp's 131050 (the user
    #: stopped marketing messages from this business)
    ERROR_131050 = "ERROR_131050"
    #: a `user_preferences` webhook: the user stopped marketing messages in WhatsApp
    USER_PREFERENCES = "USER_PREFERENCES"
    #: an inbound message that is one of the workspace's stop keywords
    KEYWORD = "KEYWORD"


#: the sources a `user_preferences` resume removes: Meta's own record of the user's
#: marketing preference. A keyword or a manual opt-out was asked of the business itself
#: (a reply, an e-mail, a form), which WhatsApp's settings know nothing about, so a
#: resume there does not lift it; removeOptOut does.
LIFTED_BY_RESUME: frozenset[OptOutSource] = frozenset({OptOutSource.USER_PREFERENCES, OptOutSource.ERROR_131050})

#: WhatsApp's error for a marketing message to a user who stopped them: it opts the
#: phone out (ERROR_131050), from a send's answer or a `failed` status
MARKETING_STOPPED = "131050"

#: Meta's `user_preferences` category of marketing messages, and its two values
MARKETING_CATEGORY = "marketing_messages"
STOP, RESUME = "stop", "resume"

DEFAULT_STOP_KEYWORDS: tuple[str, ...] = (
    "STOP",
    "UNSUBSCRIBE",
    "END",
    "QUIT",
    "CANCEL",
    "OPTOUT",
    "STOPALL",
    "REVOKE",
)
MAX_STOP_KEYWORDS = 50
MAX_KEYWORD = 40
#: phones one addOptOuts call takes (bulk lists go through the CSV import)
MAX_OPT_OUTS_PER_CALL = 10_000
MAX_DETAIL = 500


def keyword_form(text: str) -> str:
    """How a message and a keyword are compared: trimmed, inner whitespace as one space,
    case-folded, compatibility-normalised (a full-width "ＳＴＯＰ" is STOP)."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def stop_keyword(body: str | None, keywords: Iterable[str]) -> str | None:
    """The keyword the whole message `body` is (as written in `keywords`), or None. A
    message that only contains a keyword ("please don't stop") is not one."""
    if not body:
        return None
    wanted = keyword_form(body)
    if not wanted or len(wanted) > MAX_KEYWORD:
        return None
    return next((k for k in keywords if keyword_form(k) == wanted), None)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_stop_keywords(values: Iterable[object], field: str = "keywords") -> tuple[str, ...]:
    """Keywords as a client sends them: each trimmed, 1 to MAX_KEYWORD characters, no
    control characters; duplicates (by keyword_form) dropped, the first kept. Every bad
    one at once, each naming its index; at least one keyword."""
    errors: list[DomainError] = []
    kept: dict[str, str] = {}
    items = list(values)
    if len(items) > MAX_STOP_KEYWORDS:
        raise ValidationFailed(f"At most {MAX_STOP_KEYWORDS} stop keywords (got {len(items)}).", (field,))
    for index, value in enumerate(items):
        where = (field, str(index))
        if not isinstance(value, str) or not value.strip():
            errors.append(ValidationFailed("A stop keyword must not be empty.", where))
            continue
        text = " ".join(value.split())
        if len(text) > MAX_KEYWORD:
            errors.append(ValidationFailed(f"A stop keyword is at most {MAX_KEYWORD} characters.", where))
        elif _CONTROL.search(text):
            errors.append(ValidationFailed("A stop keyword must not contain control characters.", where))
        else:
            kept.setdefault(keyword_form(text), text)
    collect(errors)
    if not kept:
        defaults = ", ".join(DEFAULT_STOP_KEYWORDS)
        raise ValidationFailed(
            "Give at least one stop keyword: people must be able to opt out by replying "
            f"(the defaults are {defaults}).",
            (field,),
        )
    return tuple(kept.values())


def search_form(text: str | None) -> str | None:
    """An optOuts search as the stored phones are written: the digits and a leading
    '+' of what was typed ("+44 7911" finds "+447911123456"); None when nothing is left."""
    if text is None:
        return None
    kept = "".join(c for c in text.strip() if c.isdigit() or c == "+")
    return kept or None


def clean_detail(text: str | None) -> str | None:
    """A detail as stored: single-line, at most MAX_DETAIL characters (an inbound body or
    a webhook's text is the sender's, not ours)."""
    if text is None:
        return None
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat[:MAX_DETAIL] or None
