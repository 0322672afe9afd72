"""Opaque global ids (Relay) and pagination cursors."""

from __future__ import annotations

import base64
import binascii

from domain.errors import NotFound, ValidationFailed

NODE_TYPES = (
    "ApiKey",
    "Campaign",
    "Message",
    "OptOut",
    "RecurringSchedule",
    "Sender",
    "Template",
    "TestMessage",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Workspace",
)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(token: str) -> str:
    padded = token + "=" * (-len(token) % 4)
    return base64.urlsafe_b64decode(padded.encode()).decode()


def to_global_id(type_name: str, pk: int) -> str:
    return _b64(f"{type_name}:{pk}")


def parse_global_id(gid: str) -> tuple[str, int] | None:
    """(type, pk) of a well-formed id, else None."""
    try:
        type_name, _, raw = _unb64(gid).partition(":")
        pk = int(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if type_name not in NODE_TYPES or pk <= 0 or pk >= 2**63:
        return None
    return type_name, pk


def expect_id(gid: str, type_name: str, field: tuple[str, ...] = ("id",)) -> int:
    """The pk of a `type_name` id. A malformed id or one of another type is NOT_FOUND,
    exactly like an id that does not exist: ids are opaque to clients."""
    parsed = parse_global_id(gid)
    if parsed is None or parsed[0] != type_name:
        raise NotFound(f"No {type_name.lower()} with id {gid!r}.", field)
    return parsed[1]


def encode_cursor(pk: int) -> str:
    return _b64(f"cursor:{pk}")


def decode_cursor(cursor: str, field: tuple[str, ...] = ("after",)) -> int:
    try:
        prefix, _, raw = _unb64(cursor).partition(":")
        pk = int(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pk, prefix = 0, ""
    if prefix != "cursor" or not 0 < pk < 2**63:  # a bigint, like the ids it points past
        raise ValidationFailed(f"Malformed cursor {cursor!r}.", field)
    return pk
