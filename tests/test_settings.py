"""settings.py: defaults that are safe in production, and refusals that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.sending import InDoubtPolicy
from settings import GRAPH_API_URL, ConfigError, Settings
from simulator.config import SimulatorConfig

REAL = {
    "WHATSAPP_ACCESS_TOKEN": "EAAG-real",
    "WHATSAPP_APP_SECRET": "s3cr3t",
    "WHATSAPP_VERIFY_TOKEN": "v3r1fy",
    "SENDER_TOKEN_KEY": "dGVzdC1zZW5kZXItdG9rZW4ta2V5LTMyLWJ5dGVzISE=",
}


def test_defaults_assume_no_provider_feature_the_cloud_api_lacks() -> None:
    """Finding 13: the Cloud API documents no idempotency key, yet idempotency was the
    default on both sides, so resending in-doubt messages under "the same key" would
    have been a silent duplicate in production."""
    settings = Settings.from_env({})
    assert settings.whatsapp_idempotency is False
    assert SimulatorConfig().honour_idempotency is False
    assert settings.provider_endpoint() == (GRAPH_API_URL, "v26.0")
    assert settings.in_doubt_policy is InDoubtPolicy.RESEND
    assert settings.reconcile_window_s == 600


def test_every_variable_is_read_by_its_field_name() -> None:
    settings = Settings.from_env(
        {
            "WHATSAPP_IDEMPOTENCY": "true",
            "RECONCILE_WINDOW_S": "30",
            "IN_DOUBT_POLICY": "FAIL",
            "WORKER_LEASE_TTL_S": "6",
            "ALLOWED_ORIGINS": "https://a.example, https://b.example",
            "LOG_LEVEL": "debug",
            "REDIS_URL": "",
        }
    )
    assert settings.whatsapp_idempotency is True
    assert (settings.reconcile_window_s, settings.in_doubt_policy) == (30.0, InDoubtPolicy.FAIL)
    assert settings.worker_lease_ttl_s == 6.0
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.log_level == "DEBUG" and settings.redis_url is None


def test_a_bad_value_names_its_variable() -> None:
    with pytest.raises(ConfigError) as bad:
        Settings.from_env({"IN_DOUBT_POLICY": "maybe"})
    assert bad.value.variable == "IN_DOUBT_POLICY"
    with pytest.raises(ConfigError) as bad:
        Settings.from_env({"WORKER_CONCURRENCY": "lots"})
    assert bad.value.variable == "WORKER_CONCURRENCY"


@pytest.mark.parametrize(
    ("base", "version", "expected"),
    [
        ("https://graph.facebook.com", "v26.0", ("https://graph.facebook.com", "v26.0")),
        ("https://graph.facebook.com/", "v24.0", ("https://graph.facebook.com", "v24.0")),
        # Meta's examples write the version into the base: taken apart, never doubled
        ("https://graph.facebook.com/v26.0", "v26.0", ("https://graph.facebook.com", "v26.0")),
        ("http://127.0.0.1:9000/simulator/v26.0/", "v26.0", ("http://127.0.0.1:9000/simulator", "v26.0")),
    ],
)
def test_the_base_url_and_the_version_never_double(base: str, version: str, expected: tuple[str, str]) -> None:
    """Finding 12: docker-compose.yml's base URL carried the version, so the send URL
    repeated it."""
    assert Settings(whatsapp_api_base=base, whatsapp_api_version=version).provider_endpoint() == expected


def test_two_different_versions_are_refused_naming_the_base_url() -> None:
    with pytest.raises(ConfigError) as bad:
        Settings(whatsapp_api_base="https://graph.facebook.com/v21.0").provider_endpoint()
    assert bad.value.variable == "WHATSAPP_API_BASE" and "v21.0" in str(bad.value) and "v26.0" in str(bad.value)


@pytest.mark.parametrize(
    "variable", ["WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "WHATSAPP_ACCESS_TOKEN", "SENDER_TOKEN_KEY"]
)
@pytest.mark.parametrize("value", ["", "   ", None])
def test_serve_refuses_empty_and_development_secrets(variable: str, value: str | None) -> None:
    env = dict(REAL)
    if value is None:
        del env[variable]  # the development default
    else:
        env[variable] = value
    with pytest.raises(ConfigError) as bad:
        Settings.from_env(env).check_production("serve")
    assert bad.value.variable == variable


def test_worker_needs_the_access_token_and_the_sender_token_key_only() -> None:
    Settings.from_env(
        {"WHATSAPP_ACCESS_TOKEN": "EAAG-real", "SENDER_TOKEN_KEY": REAL["SENDER_TOKEN_KEY"]}
    ).check_production("worker")
    with pytest.raises(ConfigError) as bad:
        Settings.from_env({}).check_production("worker")
    assert bad.value.variable == "WHATSAPP_ACCESS_TOKEN"
    Settings.from_env(REAL).check_production("serve")


def test_docker_compose_is_right_for_the_real_cloud_api() -> None:
    compose = (Path(__file__).resolve().parents[1] / "docker-compose.yml").read_text()
    assert "${WHATSAPP_API_BASE:-https://graph.facebook.com}" in compose  # no version in the base
    for variable in ("WHATSAPP_ACCESS_TOKEN", "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "SENDER_TOKEN_KEY"):
        assert f"${{{variable}:?" in compose, variable  # required, never an empty default
    assert 'WHATSAPP_IDEMPOTENCY: "false"' in compose


def test_postgresql_sessions_idle_in_a_transaction_are_ended_sqlite_is_left_as_is() -> None:
    pg = Settings.from_env({"DATABASE_URL": "postgres://u@db:5432/c", "DATABASE_IDLE_IN_TRANSACTION_S": "2.5"})
    connection = pg.tortoise_config()["connections"]["default"]  # type: ignore[index]
    assert connection["engine"] == "tortoise.backends.asyncpg"
    assert connection["credentials"]["server_settings"] == {"idle_in_transaction_session_timeout": "2500"}
    assert connection["credentials"]["host"] == "db" and connection["credentials"]["database"] == "c"
    sqlite = Settings(database_url="sqlite://:memory:").tortoise_config()["connections"]["default"]  # type: ignore[index]
    assert isinstance(sqlite, str)
