"""simulator/config.py: the frozen config, its validation, and reading it from
SIMULATOR_* variables (parse_mix, parse_range and the per-type parsers)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from simulator.config import SimulatorConfig, parse_mix, parse_range
from tests.simulator.conftest import PHONE_NUMBER_ID


def make(**fields: Any) -> SimulatorConfig:
    """A config from fields named at run time (parametrized tests)."""
    return SimulatorConfig(**fields)


# --- the value -------------------------------------------------------------------------


def test_config_from_env() -> None:
    config = SimulatorConfig.from_env(
        env={
            "SIMULATOR_SEED": "42",
            "SIMULATOR_LATENCY_MS": "50",
            "SIMULATOR_RATE_LIMIT": "80",
            "SIMULATOR_WEBHOOK_URL": "http://127.0.0.1:8000/webhooks/whatsapp",
            "SIMULATOR_ERROR_MIX": "131026=0.02,131047=0.01",
            "SIMULATOR_DELIVERED_DELAY_MS": "300-2000",
            "SIMULATOR_HONOUR_IDEMPOTENCY": "false",
            "OTHER_SEED": "9",
        }
    )
    assert config.seed == 42 and config.latency_mean_ms == 50 and config.rate_limit_per_second == 80
    assert config.webhook_url == "http://127.0.0.1:8000/webhooks/whatsapp"
    assert dict(config.error_mix) == {"131026": 0.02, "131047": 0.01}
    assert config.delivered_delay_ms == (300.0, 2000.0)
    assert config.honour_idempotency is False
    assert config.phone_number_id == PHONE_NUMBER_ID
    assert SimulatorConfig.from_env(env={}) == SimulatorConfig()
    with pytest.raises(ValueError, match="more than 1"):
        SimulatorConfig(error_mix={"131026": 0.7, "131047": 0.6})


def test_the_defaults_are_the_cloud_api_of_the_docs() -> None:
    config = SimulatorConfig()
    assert config.api_version == "v26.0"  # docs/STACK.md: the default version here
    assert config.send_sent_status is True  # every accepted message gets a `sent`
    assert config.webhook_url is None and config.rate_limit_per_second is None
    assert config.lost_answer_probability == config.slow_answer_probability == 0.0
    assert dict(config.error_mix) == {} and dict(config.later_failure_mix) == {}


def test_the_config_is_frozen_and_its_mixes_are_read_only_copies() -> None:
    given: dict[Any, float] = {131047: 0.01, "131026": 0.02}
    config = SimulatorConfig(error_mix=given)
    given[131047] = 0.9
    assert list(config.error_mix.items()) == [("131026", 0.02), ("131047", 0.01)]  # str codes, sorted
    with pytest.raises(TypeError):
        config.error_mix["131026"] = 0.5  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 2  # type: ignore[misc]


def test_delay_ranges_become_float_pairs_and_replace_validates_again() -> None:
    config = SimulatorConfig(sent_delay_ms=(1, 2), late_delay_ms=[5, 5])  # type: ignore[arg-type]
    assert config.sent_delay_ms == (1.0, 2.0) and config.late_delay_ms == (5.0, 5.0)
    assert all(isinstance(v, float) for v in config.sent_delay_ms)
    with pytest.raises(ValueError, match="read_delay_ms"):
        dataclasses.replace(config, read_delay_ms=(10.0, 1.0))


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize("bounds", [(10.0, 1.0), (-1.0, 5.0)])
@pytest.mark.parametrize("name", ["sent_delay_ms", "delivered_delay_ms", "read_delay_ms", "late_delay_ms"])
def test_a_delay_range_must_be_min_max_from_zero(name: str, bounds: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match=rf"{name} must be \(min, max\) with 0 <= min <= max"):
        make(**{name: bounds})


@pytest.mark.parametrize(
    "name",
    [
        "delivered_probability",
        "read_probability",
        "duplicate_webhook_probability",
        "out_of_order_probability",
        "late_probability",
        "lost_answer_probability",
        "slow_answer_probability",
    ],
)
@pytest.mark.parametrize("value", [-0.01, 1.01])
def test_a_probability_outside_0_1_is_refused_by_name(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"{name} must be within \[0, 1\]"):
        make(**{name: value})
    make(**{name: 1.0})  # the bounds themselves are fine


@pytest.mark.parametrize("field", ["error_mix", "later_failure_mix"])
def test_a_mix_probability_outside_0_1_is_refused_naming_its_code(field: str) -> None:
    with pytest.raises(ValueError, match=r"probability of 131026 must be within \[0, 1\], got 1.5"):
        make(**{field: {"131026": 1.5}})
    make(**{field: {"131026": 0.5, "131047": 0.5}})  # adding up to exactly 1 is fine


def test_the_later_failure_mix_may_not_add_up_to_more_than_1_either() -> None:
    with pytest.raises(ValueError, match="add up to more than 1"):
        SimulatorConfig(later_failure_mix={"131026": 0.5, "131047": 0.5, "131050": 0.01})


def test_lost_and_slow_answers_together_are_at_most_every_answer() -> None:
    with pytest.raises(ValueError, match=r"lost_answer_probability \+ slow_answer_probability"):
        SimulatorConfig(lost_answer_probability=0.6, slow_answer_probability=0.5)
    SimulatorConfig(lost_answer_probability=0.5, slow_answer_probability=0.5)


@pytest.mark.parametrize("rate", [0, -5])
def test_a_rate_limit_is_positive_or_none(rate: float) -> None:
    with pytest.raises(ValueError, match="rate_limit_per_second must be positive or None"):
        SimulatorConfig(rate_limit_per_second=rate)
    assert SimulatorConfig(rate_limit_per_second=0.5).rate_limit_per_second == 0.5


@pytest.mark.parametrize("name", ["webhook_batch_size", "webhook_max_attempts", "webhook_concurrency"])
def test_webhook_batch_size_attempts_and_concurrency_are_at_least_one(name: str) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        make(**{name: 0})


def test_an_error_code_that_is_not_a_number_is_refused_when_configuring() -> None:
    """Meta's codes are integers; the engine answers with `int(code)` and the webhook's
    `errors[].code` is one too, so a typo must fail here, not crash a send later."""
    for field in ("error_mix", "later_failure_mix"):
        with pytest.raises(ValueError, match="13l026"):
            make(**{field: {"13l026": 0.5}})


# --- parsing ---------------------------------------------------------------------------


def test_parse_mix_reads_codes_and_probabilities_separated_by_commas_or_semicolons() -> None:
    assert parse_mix("131026=0.02,131047=0.01") == {"131026": 0.02, "131047": 0.01}
    assert parse_mix(" 131026 = 0.5 ; 131047=0.25, ") == {"131026": 0.5, "131047": 0.25}
    assert parse_mix("") == {}


def test_parse_mix_names_an_entry_without_equals() -> None:
    with pytest.raises(ValueError, match="error mix entry '131047' is not CODE=PROBABILITY"):
        parse_mix("131026=0.02,131047")


@pytest.mark.parametrize("text", ["300-2000", "300..2000", "300,2000"])
def test_parse_range_reads_min_and_max_with_any_separator(text: str) -> None:
    assert parse_range(text) == (300.0, 2000.0)


def test_parse_range_of_one_number_is_a_fixed_delay() -> None:
    assert parse_range("250") == (250.0, 250.0)


# --- from the environment --------------------------------------------------------------


def test_every_field_is_read_under_its_own_name_and_parsed_by_its_type() -> None:
    config = SimulatorConfig.from_env(
        env={
            "SIMULATOR_LATENCY_MEAN_MS": "80",
            "SIMULATOR_LATENCY_JITTER": "0",
            "SIMULATOR_SEND_SENT_STATUS": "no",
            "SIMULATOR_WEBHOOK_BATCH_SIZE": "25",
            "SIMULATOR_LATER_FAILURE_MIX": "131026=0.01",
            "SIMULATOR_LATE_DELAY_MS": "100..200",
            "SIMULATOR_ACCESS_TOKEN": "secret",
            "SIMULATOR_RATE_LIMIT_PER_SECOND": "1000",
            "SIMULATOR_DUPLICATE_WEBHOOK_PROBABILITY": " 0.1 ",
        }
    )
    assert config.latency_mean_ms == 80.0 and config.latency_jitter == 0.0
    assert config.send_sent_status is False and config.webhook_batch_size == 25
    assert dict(config.later_failure_mix) == {"131026": 0.01} and config.late_delay_ms == (100.0, 200.0)
    assert config.access_token == "secret" and config.rate_limit_per_second == 1000.0
    assert config.duplicate_webhook_probability == 0.1


@pytest.mark.parametrize("text", ["", "none", "NULL", "0", "unlimited"])
def test_a_rate_limit_of_nothing_zero_or_none_means_unlimited(text: str) -> None:
    assert SimulatorConfig.from_env(env={"SIMULATOR_RATE_LIMIT": text}).rate_limit_per_second is None


@pytest.mark.parametrize(("text", "expected"), [("1", True), ("TRUE", True), ("yes", True), ("on", True), ("0", False)])
def test_booleans_read_the_usual_words(text: str, expected: bool) -> None:
    assert SimulatorConfig.from_env(env={"SIMULATOR_HONOUR_IDEMPOTENCY": text}).honour_idempotency is expected


def test_an_empty_webhook_url_means_no_webhooks() -> None:
    assert SimulatorConfig.from_env(env={"SIMULATOR_WEBHOOK_URL": ""}).webhook_url is None


def test_another_prefix_reads_other_variables() -> None:
    env = {"SIM_SEED": "3", "SIMULATOR_SEED": "4"}
    assert SimulatorConfig.from_env(prefix="SIM_", env=env).seed == 3


def test_without_a_mapping_the_process_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_SEED", "77")
    monkeypatch.setenv("SIMULATOR_ERROR_MIX", "131047=0.3")
    config = SimulatorConfig.from_env()
    assert config.seed == 77 and dict(config.error_mix) == {"131047": 0.3}


def test_values_from_the_environment_are_validated_like_any_other() -> None:
    with pytest.raises(ValueError, match="delivered_delay_ms must be"):
        SimulatorConfig.from_env(env={"SIMULATOR_DELIVERED_DELAY_MS": "2000..300"})
    with pytest.raises(ValueError, match="read_probability must be within"):
        SimulatorConfig.from_env(env={"SIMULATOR_READ_PROBABILITY": "60"})


def test_a_value_that_does_not_parse_is_refused_naming_its_variable() -> None:
    """As settings.py does (ConfigError names the variable): among thirty variables,
    "invalid literal for int()" alone does not say which one is wrong."""
    for variable, text in [
        ("SIMULATOR_SEED", "abc"),
        ("SIMULATOR_ERROR_MIX", "131026=two%"),
        ("SIMULATOR_SENT_DELAY_MS", "fast"),
    ]:
        with pytest.raises(ValueError, match=variable):
            SimulatorConfig.from_env(env={variable: text})


# --- numbers ---------------------------------------------------------------------------


def test_the_first_number_is_the_configs_and_more_come_from_the_environment() -> None:
    config = SimulatorConfig.from_env(
        env={
            "SIMULATOR_VERIFIED_NAME": "Acme",
            "SIMULATOR_MESSAGING_LIMIT_TIER": "TIER_2K",
            "SIMULATOR_RATE_LIMIT": "80",
            "SIMULATOR_NUMBERS": '[{"phone_number_id": "100000000000002", "waba_id": "200000000000002",'
            ' "display_phone_number": "15550000002", "access_token": "token-2", "throughput": 20}]',
        }
    )
    first = config.number
    assert (first.phone_number_id, first.waba_id, first.display_phone_number) == (
        PHONE_NUMBER_ID,
        "200000000000001",
        "15550000001",
    )
    assert (first.verified_name, first.messaging_limit_tier, first.throughput) == ("Acme", "TIER_2K", 80.0)
    [second] = config.numbers
    assert (second.phone_number_id, second.access_token, second.throughput) == ("100000000000002", "token-2", 20.0)
    assert SimulatorConfig().number.throughput is None  # unlimited, as rate_limit_per_second


def test_numbers_are_validated_with_the_config() -> None:
    with pytest.raises(ValueError, match="messaging_limit_tier"):
        SimulatorConfig(messaging_limit_tier="TIER_1K")
    with pytest.raises(ValueError, match="distinct"):
        # a mapping is taken as the control API's JSON
        make(
            numbers=(
                {"phone_number_id": PHONE_NUMBER_ID, "waba_id": "1", "display_phone_number": "1", "access_token": "x"},
            )
        )
    with pytest.raises(ValueError, match="SIMULATOR_NUMBERS"):
        SimulatorConfig.from_env(env={"SIMULATOR_NUMBERS": '[{"phone_number_id": "7"}]'})


def test_the_pricing_category_and_the_opted_out_answer_are_checked() -> None:
    assert SimulatorConfig().pricing_category == "marketing" and SimulatorConfig().opted_out_answer == "status"
    env = {"SIMULATOR_PRICING_CATEGORY": "utility", "SIMULATOR_OPTED_OUT_ANSWER": "error"}
    config = SimulatorConfig.from_env(env=env)
    assert (config.pricing_category, config.opted_out_answer) == ("utility", "error")
    with pytest.raises(ValueError, match="pricing_category"):
        SimulatorConfig(pricing_category="market ing")
    with pytest.raises(ValueError, match="opted_out_answer"):
        SimulatorConfig(opted_out_answer="silently")


def test_templates_and_their_listing_budget_come_from_the_environment() -> None:
    config = SimulatorConfig.from_env(
        env={
            "SIMULATOR_NUMBERS": '[{"phone_number_id": "100000000000002", "waba_id": "200000000000002", '
            '"display_phone_number": "15550000002", "access_token": "token-2"}]',
            "SIMULATOR_TEMPLATES": '[{"name": "welcome", "language": "en", "category": "UTILITY", "body": "Hi"},'
            ' {"name": "promo", "language": "en", "category": "MARKETING", "body": "Sale", "waba_id": "200000000000002"}]',
            "SIMULATOR_SAMPLE_TEMPLATES": "false",
            "SIMULATOR_TEMPLATES_RATE_LIMIT_PER_HOUR": "none",
        }
    )
    assert [(t.waba_id, t.name) for t in config.templates] == [
        (config.waba_id, "welcome"),
        ("200000000000002", "promo"),
    ]
    assert config.sample_templates is False and config.templates_rate_limit_per_hour is None
    assert SimulatorConfig().templates_rate_limit_per_hour == 5000 and SimulatorConfig().sample_templates is True


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {"templates": ({"name": "x", "language": "en", "category": "PROMO", "body": "Hi"},)},
            "templates[0]: category",
        ),
        (
            {"templates": ({"name": "x", "language": "en", "category": "UTILITY", "body": "Hi", "waba_id": "9"},)},
            "WABA 9, which has no number here",
        ),
        ({"templates_rate_limit_per_hour": 0}, "templates_rate_limit_per_hour"),
    ],
)
def test_templates_are_validated_with_the_config(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError) as refused:
        make(**fields)
    assert words in str(refused.value)
