"""domain/campaign_input.py: validate_fields maps the contract's camelCase fields to model
attributes, keeps meaningful nulls, checks each field's range and names the field at
fault; validate_reason checks cancelCampaign's reason. Pure: no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from domain.campaign_input import FIELDS, MAX_NAME, MAX_REASON, MAX_SEND_RATE, validate_fields, validate_reason
from domain.errors import DomainError, ErrorCode, InvalidInput, ValidationFailed


def refused(given: dict[str, Any], *, creating: bool = False, prefix: str = "input") -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        validate_fields(given, creating=creating, prefix=prefix)
    return caught.value


def test_a_full_input_comes_back_under_the_model_attribute_names() -> None:
    given = {
        "name": "Spring sale",
        "body": "Hi {{name}}",
        "templateName": "spring_sale_2",
        "templateLanguage": "en_US",
        "sendRate": 50,
        "failureThreshold": 0.25,
        "failureSampleSize": 200,
        "timeZone": "Europe/Paris",
        "sendWindow": {"days": ["MON", "FRI"], "start": "09:00", "end": "20:00", "timeZone": None},
    }
    assert set(given) == set(FIELDS)
    assert validate_fields(given, creating=True).values == {
        "name": "Spring sale",
        "body": "Hi {{name}}",
        "template_name": "spring_sale_2",
        "template_language": "en_US",
        "send_rate": 50,
        "failure_threshold": 0.25,
        "failure_sample_size": 200,
        "time_zone": "Europe/Paris",
        "send_window": '{"days": ["MON", "FRI"], "start": "09:00", "end": "20:00", "timeZone": null}',
    }


def test_a_bad_time_zone_or_a_window_that_never_opens_is_refused_naming_the_field() -> None:
    base = {"name": "n", "body": "b"}
    with pytest.raises(DomainError) as bad_zone:
        validate_fields({**base, "timeZone": "Mars/Olympus"}, creating=True)
    assert bad_zone.value.field == ("input", "timeZone")
    never: dict[str, Any] = {"days": [], "start": "09:00", "end": "20:00", "timeZone": None}
    with pytest.raises(DomainError) as empty:
        validate_fields({**base, "sendWindow": never}, creating=True)
    assert empty.value.field == ("input", "sendWindow", "days")
    same = {"days": ["MON"], "start": "09:00", "end": "09:00", "timeZone": None}
    with pytest.raises(DomainError) as closed:
        validate_fields({**base, "sendWindow": same}, creating=True)
    assert closed.value.field == ("input", "sendWindow", "end")
    late = {"days": ["MON"], "start": "25:00", "end": "09:00", "timeZone": None}
    with pytest.raises(DomainError) as hour:
        validate_fields({**base, "sendWindow": late}, creating=True)
    assert hour.value.field == ("input", "sendWindow", "start")
    assert validate_fields({**base, "sendWindow": None}, creating=True).values["send_window"] is None


def test_an_update_returns_only_the_fields_given_and_keeps_their_nulls() -> None:
    assert validate_fields({}, creating=False).values == {}
    given = {"sendRate": None, "failureThreshold": None, "templateName": None, "templateLanguage": None}
    assert validate_fields(given, creating=False).values == {
        "send_rate": None,
        "failure_threshold": None,
        "template_name": None,
        "template_language": None,
    }


def test_the_name_is_trimmed_before_its_length_is_measured_but_the_body_is_kept_as_given() -> None:
    values = validate_fields({"name": f"  {'x' * MAX_NAME}\n", "body": "  Hi\n"}, creating=True).values
    assert values == {"name": "x" * MAX_NAME, "body": "  Hi\n"}


@pytest.mark.parametrize(
    ("given", "missing"),
    [({"body": "Hi"}, "name"), ({"name": "Sale"}, "body")],
)
def test_creating_requires_a_name_and_a_body(given: dict[str, Any], missing: str) -> None:
    error = refused(given, creating=True)
    assert error.field == ("input", missing)
    assert error.message == f"{missing} is required."
    assert validate_fields(given, creating=False).values.keys() == {FIELDS[k] for k in given}


def test_a_template_needs_its_language_when_creating_only() -> None:
    error = refused({"name": "Sale", "body": "Hi", "templateName": "promo"}, creating=True)
    assert error.field == ("input", "templateLanguage")
    # an update may set the name alone: the language can already be stored (services check the merge)
    assert validate_fields({"templateName": "promo"}, creating=False).values == {"template_name": "promo"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("sendRate", 1),
        ("sendRate", MAX_SEND_RATE),
        ("failureThreshold", 1.0),
        ("failureThreshold", 0.0001),
        ("failureSampleSize", 1),
        ("failureSampleSize", 1_000_000),
        ("templateName", "a" * 512),
        ("templateName", "promo_2"),
        ("templateLanguage", "en"),
        ("templateLanguage", "fil"),
        ("templateLanguage", "pt_BR"),
    ],
)
def test_the_bounds_of_each_range_are_accepted(key: str, value: object) -> None:
    assert validate_fields({key: value}, creating=False).values == {FIELDS[key]: value}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("name", None),
        ("body", None),
        ("body", " \n "),
        ("sendRate", MAX_SEND_RATE + 1),
        ("failureThreshold", float("nan")),
        ("failureThreshold", -0.1),
        ("failureSampleSize", None),
        ("failureSampleSize", 1_000_001),
        ("templateName", ""),
        ("templateName", "a" * 513),
        ("templateName", "Promo"),
        ("templateLanguage", "EN"),
        ("templateLanguage", "en-US"),
        ("templateLanguage", "en_us"),
    ],
)
def test_out_of_range_values_are_refused_naming_their_field(key: str, value: object) -> None:
    error = refused({key: value})
    assert error.code is ErrorCode.VALIDATION
    assert error.field == ("input", key)
    assert key in error.message


def test_the_field_path_starts_with_the_given_prefix() -> None:
    assert refused({"name": ""}, prefix="campaign").field == ("campaign", "name")


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as refused_all:
        validate_fields({"name": " ", "sendRate": 0, "templateName": "Bad Name"}, creating=True)
    fields = [e.field for e in refused_all.value.errors]
    assert fields == [
        ("input", "name"),
        ("input", "sendRate"),
        ("input", "templateName"),
        ("input", "body"),
    ]


def test_a_lone_surrogate_in_a_name_or_body_is_refused_before_the_database_sees_it() -> None:
    with pytest.raises(InvalidInput) as refused_all:
        validate_fields({"name": "Sale \ud800", "body": "Hi \udfff"}, creating=True)
    assert [e.field for e in refused_all.value.errors] == [("input", "name"), ("input", "body")]
    assert "lone UTF-16 surrogate" in refused_all.value.errors[0].message


@pytest.mark.parametrize("reason", [None, "", "wrong audience", "x" * MAX_REASON, "Größe 🎉"])
def test_a_reason_up_to_the_limit_comes_back_unchanged(reason: str | None) -> None:
    assert validate_reason(reason) == reason


@pytest.mark.parametrize(
    ("reason", "says"),
    [("x" * (MAX_REASON + 1), f"at most {MAX_REASON} characters"), ("typo \ud800", "lone UTF-16 surrogate")],
)
def test_a_reason_too_long_or_not_storable_is_refused_naming_the_field(reason: str, says: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_reason(reason)
    assert caught.value.code is ErrorCode.VALIDATION
    assert caught.value.field == ("reason",)
    assert says in caught.value.message
