"""domain/recipients.py: a recipient is an E.164 phone and a flat object of scalar
variables, stored as compact JSON of at most MAX_VARIABLES_BYTES; anything else is an
InvalidRecipient whose reason the user reads. Pure: no I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.messages import MAX_VARIABLES_BYTES
from domain.recipients import InvalidRecipient, csv_recipient, recipient, variables_json


def reason(phone: Any, variables: Any) -> str:
    with pytest.raises(InvalidRecipient) as refused:
        recipient(phone, variables)
    return str(refused.value)


def test_a_recipient_is_its_e164_phone_and_compact_json_keeping_non_ascii() -> None:
    phone, variables = recipient(" +44 7911 123456 ", {"name": "Zoë", "n": 3, "vip": True, "x": 1.5, "none": None})
    assert phone == "+447911123456"
    assert variables == '{"name":"Zoë","n":3,"vip":true,"x":1.5,"none":null}'


def test_no_variables_are_stored_as_an_empty_object() -> None:
    assert recipient("+14155552671", None) == ("+14155552671", "{}")
    assert variables_json({}) == "{}"


@pytest.mark.parametrize("phone", [None, 14155552671, ["+14155552671"]])
def test_a_phone_that_is_not_a_string_is_refused(phone: Any) -> None:
    assert reason(phone, None) == "phone must be a string"


def test_an_invalid_phone_is_refused_with_the_phones_reason_only() -> None:
    with pytest.raises(InvalidRecipient) as refused:
        recipient("4155552671", None)
    assert "international format" in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__
    assert "empty" in reason("  ", None)


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (["a"], "variables must be an object of names to values"),
        ("name=Zoë", "variables must be an object of names to values"),
        ({"": "x"}, "variable names must be non-empty strings"),
        ({1: "x"}, "variable names must be non-empty strings"),
        ({"tags": ["a"]}, "variable 'tags' must be a string, number or boolean"),
        ({"address": {"city": "x"}}, "variable 'address' must be a string, number or boolean"),
        ({"a\x00": "x"}, "variable 'a\\x00' contains a NUL character"),
        ({"a": "x\x00y"}, "variable 'a' contains a NUL character"),
    ],
)
def test_variables_that_are_not_a_flat_object_of_scalars_are_refused(variables: Any, expected: str) -> None:
    assert reason("+14155552671", variables) == expected


def test_the_size_limit_counts_bytes_of_the_stored_json() -> None:
    fits = {"a": "x" * (MAX_VARIABLES_BYTES - len('{"a":""}'))}
    assert len(variables_json(fits).encode()) == MAX_VARIABLES_BYTES
    with pytest.raises(InvalidRecipient, match=f"larger than {MAX_VARIABLES_BYTES} bytes"):
        variables_json({"a": fits["a"] + "x"})
    # fewer characters than the limit, but two bytes each in UTF-8
    with pytest.raises(InvalidRecipient, match="larger than"):
        variables_json({"a": "é" * (MAX_VARIABLES_BYTES // 2)})


def test_a_csv_row_is_normalised_and_its_text_cells_encoded() -> None:
    assert csv_recipient("+1 415 555 2671", {"name": "Zoë", "code": ""}) == (
        "+14155552671",
        '{"name":"Zoë","code":""}',
    )
    with pytest.raises(InvalidRecipient, match="international format"):
        csv_recipient("4155552671", {})
    with pytest.raises(InvalidRecipient, match="larger than"):
        csv_recipient("+14155552671", {"a": "x" * MAX_VARIABLES_BYTES})


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")], ids=["inf", "-inf", "nan"])
def test_a_non_finite_number_is_refused_since_json_cannot_hold_it(value: float) -> None:
    # JSON's 1e999 parses to inf. Accepted, it is stored as `Infinity`/`NaN`, which is not
    # JSON: PostgreSQL's jsonb refuses the insert and SQLite's json_extract the launch check.
    try:
        stored = variables_json({"price": value})
    except InvalidRecipient:
        return
    pytest.fail(f"stored {stored!r}, which is not JSON")


@pytest.mark.parametrize("size", [1, MAX_VARIABLES_BYTES], ids=["short", "long"])
def test_a_lone_surrogate_is_refused_since_no_database_can_store_it(size: int) -> None:
    # JSON's "\ud800" escape parses to a lone surrogate, which has no UTF-8 encoding. Short,
    # it is returned and fails the insert; long, the size check raises UnicodeEncodeError,
    # which addRecipients does not catch, instead of InvalidRecipient.
    with pytest.raises(InvalidRecipient):
        variables_json({"name": json.loads('"\\ud800"') * size})
