"""Configuration from the environment, with defaults that run with nothing installed.

| variable | default | meaning |
|---|---|---|
| DATABASE_URL | sqlite://data/campaigns.sqlite3 | sqlite://PATH or postgres://USER@HOST:PORT/DB |
| REDIS_URL | (unset) | redis://HOST:PORT/DB; unset in `campaigns dev` starts an embedded Redis |
| ALLOWED_ORIGINS | (empty) | comma-separated origins allowed for cross-origin WebSockets and CORS |
| LOG_LEVEL | INFO | Python log level of the JSON logs |
| MAX_IMPORT_BYTES | 268435456 | largest CSV upload accepted (bytes) |
| WHATSAPP_API_BASE | (simulator) | base URL of the WhatsApp Cloud API |
| WHATSAPP_ACCESS_TOKEN | dev-token | Bearer token for the Cloud API |
| WHATSAPP_PHONE_NUMBER_ID | 100000000000001 | sender phone number id |
| WHATSAPP_APP_SECRET | dev-app-secret | key of X-Hub-Signature-256 on webhooks |
| WHATSAPP_VERIFY_TOKEN | dev-verify-token | webhook verification handshake token |
| WHATSAPP_API_VERSION | v21.0 | Graph API version in the send URL |
| WHATSAPP_IDEMPOTENCY | true | whether the provider honours Idempotency-Key (resend in-doubt messages) |
| WHATSAPP_RATE_LIMIT | 1000 | messages per second of the sender number, shared by all workers |
| WORKER_CONCURRENCY | 200 | provider calls in flight per campaign run |
| WORKER_MAX_CAMPAIGNS | 10 | campaigns one worker process sends at once |
| WORKER_MAX_ATTEMPTS | 5 | provider calls per message before a transient error fails it |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite://data/campaigns.sqlite3"
SIMULATOR_URL = "http://127.0.0.1:9000"


def _sqlite_url(url: str) -> str:
    """SQLite tuned for one writer and concurrent readers: WAL, and a busy timeout so a
    second writer waits instead of failing with 'database is locked'."""
    path = url.removeprefix("sqlite://").split("?", 1)[0]
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    if "?" in url:
        return url
    return f"{url}?busy_timeout=15000&synchronous=NORMAL"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    allowed_origins: tuple[str, ...] = ()
    log_level: str = "INFO"
    max_import_bytes: int = 256 * 1024 * 1024
    whatsapp_api_base: str | None = None
    whatsapp_access_token: str = "dev-token"
    whatsapp_phone_number_id: str = "100000000000001"
    whatsapp_app_secret: str = "dev-app-secret"
    whatsapp_verify_token: str = "dev-verify-token"
    whatsapp_api_version: str = "v21.0"
    whatsapp_idempotency: bool = True
    whatsapp_rate_limit: int = 1000
    worker_concurrency: int = 200
    worker_max_campaigns: int = 10
    worker_max_attempts: int = 5

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        origins = tuple(o.strip() for o in e.get("ALLOWED_ORIGINS", "").split(",") if o.strip())
        return cls(
            database_url=e.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=e.get("REDIS_URL") or None,
            allowed_origins=origins,
            log_level=e.get("LOG_LEVEL", "INFO").upper(),
            max_import_bytes=int(e.get("MAX_IMPORT_BYTES", str(256 * 1024 * 1024))),
            whatsapp_api_base=e.get("WHATSAPP_API_BASE") or None,
            whatsapp_access_token=e.get("WHATSAPP_ACCESS_TOKEN", "dev-token"),
            whatsapp_phone_number_id=e.get("WHATSAPP_PHONE_NUMBER_ID", "100000000000001"),
            whatsapp_app_secret=e.get("WHATSAPP_APP_SECRET", "dev-app-secret"),
            whatsapp_verify_token=e.get("WHATSAPP_VERIFY_TOKEN", "dev-verify-token"),
            whatsapp_api_version=e.get("WHATSAPP_API_VERSION", "v21.0"),
            whatsapp_idempotency=e.get("WHATSAPP_IDEMPOTENCY", "true").lower() in ("1", "true", "yes"),
            whatsapp_rate_limit=int(e.get("WHATSAPP_RATE_LIMIT", "1000")),
            worker_concurrency=int(e.get("WORKER_CONCURRENCY", "200")),
            worker_max_campaigns=int(e.get("WORKER_MAX_CAMPAIGNS", "10")),
            worker_max_attempts=int(e.get("WORKER_MAX_ATTEMPTS", "5")),
        )

    def provider_base_url(self) -> str:
        """Where provider calls go: the Cloud API, or the simulator (`campaigns
        simulator` listens on 127.0.0.1:9000 by default; `campaigns dev` mounts it)."""
        return self.whatsapp_api_base or SIMULATOR_URL

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def tortoise_config(self) -> dict[str, object]:
        """The one Tortoise config: API, workers, migrations and tests all use it."""
        url = _sqlite_url(self.database_url) if self.is_sqlite else self.database_url
        return {
            "connections": {"default": url},
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


def __getattr__(name: str) -> object:
    # `tortoise -c settings.TORTOISE_ORM makemigrations` reads the config from here.
    if name == "TORTOISE_ORM":
        return Settings.from_env().tortoise_config()
    raise AttributeError(name)
