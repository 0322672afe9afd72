"""domain/ids.py: opaque Relay ids and pagination cursors round-trip, anything else is
refused (NOT_FOUND for ids, VALIDATION for cursors) naming the argument. Pure: no I/O."""

from __future__ import annotations

import base64
import re

import pytest

from domain.errors import NotFound, ValidationFailed
from domain.ids import (
    NODE_TYPES,
    decode_cursor,
    encode_cursor,
    expect_id,
    parse_global_id,
    to_global_id,
)


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("type_name", NODE_TYPES)
@pytest.mark.parametrize("pk", [1, 42, 2**63 - 1])
def test_a_global_id_round_trips_and_is_url_safe_without_padding(type_name: str, pk: int) -> None:
    gid = to_global_id(type_name, pk)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", gid)
    assert parse_global_id(gid) == (type_name, pk)
    assert expect_id(gid, type_name) == pk


@pytest.mark.parametrize(
    "gid",
    [
        "",
        "not-an-id",
        "%%%",
        b64("Campaign"),  # no pk
        b64("Campaign:x"),
        b64("Campaign:0"),
        b64("Campaign:-3"),
        b64(f"Campaign:{2**63}"),  # past a bigint
        b64("User:1"),  # not a node type
        b64(b"\xff\xfe:1"),  # not UTF-8
        encode_cursor(5),  # a cursor is not an id
    ],
)
def test_a_malformed_id_parses_to_none(gid: str) -> None:
    assert parse_global_id(gid) is None


@pytest.mark.parametrize("gid", ["garbage", to_global_id("Message", 5), b64("Campaign:0")])
def test_expect_id_refuses_a_malformed_id_or_another_type_as_not_found(gid: str) -> None:
    with pytest.raises(NotFound) as refused:
        expect_id(gid, "Campaign", ("input", "campaignId"))
    assert refused.value.field == ("input", "campaignId")
    assert refused.value.message == f"No campaign with id {gid!r}."


def test_expect_id_names_the_id_argument_by_default() -> None:
    with pytest.raises(NotFound) as refused:
        expect_id("garbage", "TestMessage")
    assert refused.value.field == ("id",)
    assert "testmessage" in refused.value.message


@pytest.mark.parametrize("pk", [1, 987_654_321, 2**63 - 1])
def test_a_cursor_round_trips(pk: int) -> None:
    cursor = encode_cursor(pk)
    assert "=" not in cursor
    assert decode_cursor(cursor) == pk


@pytest.mark.parametrize(
    "cursor",
    ["", "garbage", b64("cursor:"), b64("cursor:0"), b64("cursor:-1"), b64("cursor:x"), to_global_id("Campaign", 5)],
)
def test_a_malformed_cursor_is_a_validation_error_on_its_argument(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        decode_cursor(cursor)
    assert refused.value.field == ("after",)
    assert refused.value.message == f"Malformed cursor {cursor!r}."
    with pytest.raises(ValidationFailed) as named:
        decode_cursor(cursor, ("input", "after"))
    assert named.value.field == ("input", "after")


def test_a_cursor_past_a_bigint_is_malformed_like_an_id_past_it() -> None:
    # No row has such an id; passed on, it overflows the database's BIGINT in the query
    # (an INTERNAL error) instead of being refused here. parse_global_id bounds pks the same way.
    with pytest.raises(ValidationFailed) as refused:
        decode_cursor(encode_cursor(2**63))
    assert refused.value.field == ("after",)
