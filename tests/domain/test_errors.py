"""domain/errors.py: each refusal's code, its message and field, and the extensions a
GraphQL error built from it carries. Pure: no I/O."""

from __future__ import annotations

import pytest

from domain.errors import (
    Conflict,
    DomainError,
    ErrorCode,
    InvalidInput,
    InvalidTransition,
    LimitExceeded,
    NotFound,
    ValidationFailed,
    collect,
)


def test_every_code_is_its_own_name_and_the_contract_codes_all_exist() -> None:
    assert all(c.value == c.name for c in ErrorCode)
    # docs/contract.graphql: enum UserErrorCode { NOT_FOUND VALIDATION INVALID_TRANSITION CONFLICT LIMIT_EXCEEDED }
    assert {"NOT_FOUND", "VALIDATION", "INVALID_TRANSITION", "CONFLICT", "LIMIT_EXCEEDED"} <= set(ErrorCode)


@pytest.mark.parametrize(
    ("error_type", "code"),
    [
        (DomainError, ErrorCode.VALIDATION),
        (NotFound, ErrorCode.NOT_FOUND),
        (ValidationFailed, ErrorCode.VALIDATION),
        (Conflict, ErrorCode.CONFLICT),
        (LimitExceeded, ErrorCode.LIMIT_EXCEEDED),
    ],
)
def test_each_refusal_carries_its_code_message_and_field(error_type: type[DomainError], code: ErrorCode) -> None:
    error = error_type("Too many.", ["input", "recipients"])
    assert isinstance(error, DomainError)
    assert error.code is code
    assert error.message == str(error) == "Too many."
    assert error.field == ("input", "recipients")  # any sequence, kept as a tuple
    assert error.extensions == {"code": code.value, "field": ["input", "recipients"]}


@pytest.mark.parametrize("field", [None, ()])
def test_a_refusal_without_a_field_has_a_null_field_in_its_extensions(field: tuple[str, ...] | None) -> None:
    error = NotFound("No campaign.", field)
    assert error.field == field
    assert error.extensions == {"code": "NOT_FOUND", "field": None}


def test_an_invalid_transition_names_the_status_the_action_and_what_is_allowed() -> None:
    error = InvalidTransition("QUEUED", "EDIT", ["PAUSE", "CANCEL"])
    assert error.message == "Cannot EDIT a campaign that is QUEUED; allowed actions: PAUSE, CANCEL."
    assert (error.status, error.action, error.allowed) == ("QUEUED", "EDIT", ("PAUSE", "CANCEL"))
    assert error.extensions == {"code": "INVALID_TRANSITION", "field": ["id"]}  # the campaign's id by default


def test_an_invalid_transition_with_nothing_allowed_says_none_and_takes_a_field() -> None:
    error = InvalidTransition("DELETED", "RESUME", (), field=("input", "id"))
    assert error.message.endswith("allowed actions: none.")
    assert error.allowed == ()
    assert error.field == ("input", "id")


def test_collect_raises_nothing_for_no_errors_and_the_one_error_itself() -> None:
    collect([])
    only = ValidationFailed("name must not be empty.", ("input", "name"))
    with pytest.raises(ValidationFailed) as raised:
        collect([only])
    assert raised.value is only


def test_collect_raises_several_errors_as_one_invalid_input_holding_each() -> None:
    errors = [NotFound("No key.", ("id",)), ValidationFailed("name must not be empty.", ("input", "name"))]
    with pytest.raises(InvalidInput) as raised:
        collect(errors)
    assert raised.value.errors == tuple(errors)
    assert raised.value.message == "No key. name must not be empty."
    assert raised.value.field == ("id",)  # the first error's
    assert raised.value.extensions == {"code": "VALIDATION", "field": ["id"]}
