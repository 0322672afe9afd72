"""Configuration from the environment, with defaults that run with nothing installed.

| variable | default | meaning |
|---|---|---|
| DATABASE_URL | sqlite://data/campaigns.sqlite3 | sqlite://PATH or postgres://USER@HOST:PORT/DB |
| DATABASE_IDLE_IN_TRANSACTION_S | 5 | PostgreSQL ends a session idle this long in a transaction (a frozen process) |
| REDIS_URL | (unset) | redis://HOST:PORT/DB; unset in `campaigns dev` starts an embedded Redis |
| ALLOWED_ORIGINS | (empty) | comma-separated origins allowed for cross-origin WebSockets and CORS |
| LOG_LEVEL | INFO | Python log level of the JSON logs |
| MAX_IMPORT_BYTES | 268435456 | largest CSV upload accepted (bytes) |
| MAX_GRAPHQL_BODY_BYTES | 4194304 | largest /graphql request body (bytes); larger is 413 |
| MAX_SUBSCRIPTIONS_PER_CONNECTION | 100 | operations one WebSocket may run at once; more get an error |
| MAX_QUERY_COST | 10000 | largest cost of a GraphQL operation (schema/cost.py); costlier ones are refused |
| WHATSAPP_API_BASE | https://graph.facebook.com | base URL of the Cloud API, without the version |
| WHATSAPP_ACCESS_TOKEN | dev-token | Bearer token for the Cloud API (`serve`/`worker` refuse the dev value) |
| WHATSAPP_PHONE_NUMBER_ID | 100000000000001 | sender phone number id |
| WHATSAPP_APP_SECRET | dev-app-secret | key of X-Hub-Signature-256 on webhooks (`serve` refuses the dev value) |
| WHATSAPP_VERIFY_TOKEN | dev-verify-token | webhook verification handshake token (`serve` refuses the dev value) |
| WHATSAPP_API_VERSION | v26.0 | Graph API version in the send URL |
| WHATSAPP_IDEMPOTENCY | false | the provider honours Idempotency-Key (the Cloud API does not) |
| WHATSAPP_RATE_LIMIT | 1000 | messages per second of the sender number, shared by all workers |
| WHATSAPP_TIMEOUT_S | 15 | seconds a send may take before its answer counts as lost |
| WHATSAPP_MESSAGING_TIER | (read) | the number's messaging limit, TIER_250 ... TIER_UNLIMITED (unset: read from it) |
| WORKER_CONCURRENCY | 200 | provider calls in flight per campaign run |
| WORKER_MAX_CAMPAIGNS | 10 | campaigns one worker process sends at once |
| WORKER_MAX_ATTEMPTS | 5 | provider calls per message before a transient error fails it |
| WORKER_LEASE_TTL_S | 15 | a dead worker's campaign is taken over after this long |
| WORKER_DRAIN_TIMEOUT_S | 20 | on SIGTERM, how long a worker waits for its calls in flight |
| RECONCILE_WINDOW_S | 600 | how long an in-doubt message waits for its status webhook |
| IN_DOUBT_POLICY | resend | `resend` or `fail`: what happens to it after the window |
| WEBHOOK_ALLOW_PRIVATE_URLS | false | outbound webhooks may call private, loopback, link-local hosts (dev: true) |
| WEBHOOK_TIMEOUT_S | 10 | seconds a receiver has to answer an outbound webhook |
| WEBHOOK_RETRY_BASE_S | 10 | first retry delay of an outbound webhook; doubles each attempt, at most an hour |
| SENDER_TOKEN_KEY | (dev key) | Fernet keys, comma-separated, sealing senders' access tokens (the first seals) |
| WEBHOOK_RETRY_FOR_S | 86400 | how long an outbound webhook is retried before it is marked failed |
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tortoise.backends.base.config_generator import expand_db_url

from domain.senders import Tier, parse_tier
from domain.sending import InDoubtPolicy

DEFAULT_DATABASE_URL = "sqlite://data/campaigns.sqlite3"
GRAPH_API_URL = "https://graph.facebook.com"
#: a version segment at the end of a base URL ("…/v21.0")
_VERSION = re.compile(r"/(v\d+\.\d+)/?$")


class ConfigError(ValueError):
    """A setting that must not be used as it is; `variable` names it."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


def _sqlite_url(url: str) -> str:
    """SQLite tuned for one writer and concurrent readers: WAL, and a busy timeout so a
    second writer waits instead of failing with 'database is locked'."""
    path = url.removeprefix("sqlite://").split("?", 1)[0]
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    if "?" in url:
        return url
    return f"{url}?busy_timeout=15000&synchronous=NORMAL"


def _bool(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _tier(text: str) -> Tier:
    tier = parse_tier(text)
    if tier is None:
        raise ValueError(f"not a messaging tier ({', '.join(t.value for t in Tier)})")
    return tier


def _origins(text: str) -> tuple[str, ...]:
    return tuple(o.strip() for o in text.split(",") if o.strip())


@dataclass(frozen=True)
class Settings:
    """Each field's default is the default; `from_env` reads the upper-cased name."""

    database_url: str = DEFAULT_DATABASE_URL
    database_idle_in_transaction_s: float = 5.0
    redis_url: str | None = None
    allowed_origins: tuple[str, ...] = ()
    log_level: str = "INFO"
    max_import_bytes: int = 256 * 1024 * 1024
    max_graphql_body_bytes: int = 4 * 1024 * 1024  # addRecipients' 10,000 recipients fit
    max_subscriptions_per_connection: int = 100
    max_query_cost: int = 10_000  # 5x the costliest query of the repo's clients at least (tests/schema/test_cost.py)
    whatsapp_api_base: str | None = None
    whatsapp_access_token: str = "dev-token"
    whatsapp_phone_number_id: str = "100000000000001"
    whatsapp_app_secret: str = "dev-app-secret"
    whatsapp_verify_token: str = "dev-verify-token"
    whatsapp_api_version: str = "v26.0"
    whatsapp_idempotency: bool = False
    whatsapp_rate_limit: int = 1000
    whatsapp_timeout_s: float = 15.0
    #: the bootstrap sender's messaging limit; None: the worker reads it from the number
    #: (jobs/worker.py), and holds to TIER_250, the lowest current tier, until it can
    whatsapp_messaging_tier: Tier | None = None
    worker_concurrency: int = 200
    worker_max_campaigns: int = 10
    worker_max_attempts: int = 5
    worker_lease_ttl_s: float = 15.0
    worker_drain_timeout_s: float = 20.0
    reconcile_window_s: float = 600.0
    in_doubt_policy: InDoubtPolicy = InDoubtPolicy.RESEND
    webhook_allow_private_urls: bool = False
    webhook_timeout_s: float = 10.0
    webhook_retry_base_s: float = 10.0
    webhook_retry_for_s: float = 24 * 3600.0
    #: base64 of b"dev-sender-token-key-not-secret!": `serve` and `worker` refuse it
    sender_token_key: str = "ZGV2LXNlbmRlci10b2tlbi1rZXktbm90LXNlY3JldCE="

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = source.get(f.name.upper())
            if raw is None or (raw == "" and f.name in _EMPTY_IS_UNSET):
                continue
            try:
                values[f.name] = _PARSE.get(f.name, _BY_TYPE[str(f.type)])(raw)
            except ValueError as exc:
                raise ConfigError(f.name.upper(), f"cannot use {raw!r}: {exc}") from None
        return cls(**values)

    def provider_base_url(self) -> str:
        """Where provider calls go, without the version: the Cloud API unless
        WHATSAPP_API_BASE says otherwise (`campaigns dev` points it at its simulator)."""
        return self.provider_endpoint()[0]

    def provider_endpoint(self) -> tuple[str, str]:
        """(base URL, API version), the version given once: a base that ends with one
        (as Meta's examples write it) is taken apart, and a different
        WHATSAPP_API_VERSION is refused instead of building `/v21.0/v26.0/…`."""
        base = (self.whatsapp_api_base or GRAPH_API_URL).rstrip("/")
        found = _VERSION.search(base)
        if found is None:
            return base, self.whatsapp_api_version
        if found.group(1) != self.whatsapp_api_version:
            raise ConfigError(
                "WHATSAPP_API_BASE",
                f"ends with the version {found.group(1)} while WHATSAPP_API_VERSION is "
                f"{self.whatsapp_api_version}; give the base URL without a version",
            )
        return base[: found.start()], self.whatsapp_api_version

    def check_production(self, command: str) -> None:
        """`serve` and `worker` refuse secrets that are empty or the development ones
        (only `campaigns dev` runs with those); raises ConfigError naming the variable."""
        needed = {"worker": ("whatsapp_access_token", "sender_token_key")}.get(
            command, ("whatsapp_access_token", "whatsapp_app_secret", "whatsapp_verify_token", "sender_token_key")
        )
        for name in needed:
            value = getattr(self, name)
            variable = name.upper()
            if not value.strip():
                raise ConfigError(variable, f"is empty; campaigns {command} needs it")
            if value == getattr(DEVELOPMENT, name):
                raise ConfigError(
                    variable, "is the development value; set a real one (only `campaigns dev` runs with it)"
                )
        self.provider_endpoint()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def tortoise_config(self) -> dict[str, object]:
        """The one Tortoise config: API, workers, migrations and tests all use it."""
        connection: str | dict[str, Any]
        if self.is_sqlite:
            connection = _sqlite_url(self.database_url)
        else:
            connection = expand_db_url(self.database_url)
            # Our transactions never wait on anything but the database: a session idle
            # inside one belongs to a process that stopped (or froze) mid-transaction,
            # and its locks would block the sweep and a takeover until it woke up.
            settings = connection["credentials"].setdefault("server_settings", {})
            settings["idle_in_transaction_session_timeout"] = str(int(self.database_idle_in_transaction_s * 1000))
        return {
            "connections": {"default": connection},
            "apps": {
                "models": {
                    "models": ["models"],
                    "default_connection": "default",
                    "migrations": "models.migrations",
                }
            },
            "use_tz": True,
            "timezone": "UTC",
        }


#: the defaults, which are development values for the secrets
DEVELOPMENT = Settings()
#: set to the empty string, these mean "not set" (a compose file's `${X:-}`)
_EMPTY_IS_UNSET = frozenset({"database_url", "redis_url", "whatsapp_api_base", "whatsapp_messaging_tier"})
_BY_TYPE: dict[str, Callable[[str], Any]] = {
    "str": str,
    "str | None": lambda text: text or None,
    "int": int,
    "float": float,
    "bool": _bool,
    "tuple[str, ...]": _origins,
    "InDoubtPolicy": lambda text: InDoubtPolicy(text.strip().lower()),
    "Tier | None": _tier,
}
_PARSE: dict[str, Callable[[str], Any]] = {"log_level": lambda text: text.upper()}


def __getattr__(name: str) -> object:
    # `tortoise -c settings.TORTOISE_ORM makemigrations` reads the config from here.
    if name == "TORTOISE_ORM":
        return Settings.from_env().tortoise_config()
    raise AttributeError(name)
