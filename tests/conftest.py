"""Test fixtures: a real database (SQLite by default, PostgreSQL with TEST_DATABASE_URL),
a real Redis, and the app served by uvicorn on a loopback port.

Each test gets its own workspace, so tests never see each other's campaigns and the
database is not truncated between them.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp

from domain.senders import Tier
from runtime.database import migrate
from server import create_app
from services.auth import Principal, create_workspace
from settings import Settings

_TMP = Path(tempfile.mkdtemp(prefix="campaigns-tests-"))


def _database_url() -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite://{_TMP / 'test.sqlite3'}"


async def _recreate_postgres(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.endswith("_test"):
        raise RuntimeError(f"refusing to recreate {name!r}: test databases end in _test")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(
        database_url=_database_url(),
        redis_url=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
        log_level="WARNING",
        # webhook receivers in tests listen on loopback
        webhook_allow_private_urls=True,
        # the bootstrap sender is not throttled by a daily messaging limit in tests
        # (tests/services/test_daily_limit.py and tests/jobs/test_daily_limit.py test it)
        whatsapp_messaging_tier=Tier.TIER_UNLIMITED,
    )


@pytest.fixture(scope="session")
def is_postgres(settings: Settings) -> bool:
    return not settings.is_sqlite


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port in this event loop; yields its URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", access_log=False, ws_per_message_deflate=False
    )
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = srv.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        await task


@pytest.fixture(scope="session")
def app(settings: Settings) -> Starlette:
    """The one app of the test session. Tests needing other settings patch its state
    with `monkeypatch.setitem(app.state._state, "settings", ...)` (setattr on a
    Starlette State deletes the attribute on undo): a second app would re-register
    the ORM."""
    return create_app(settings, manage_logging=False)


@pytest_asyncio.fixture(scope="session")
async def server(settings: Settings, app: Starlette) -> AsyncIterator[str]:
    """The app on uvicorn, on a free loopback port; yields its base URL."""
    if not settings.is_sqlite:
        await _recreate_postgres(settings.database_url)
    await migrate(settings)
    await _flush_test_redis(settings)
    async with serve(app) as url:
        yield url


async def _flush_test_redis(settings: Settings) -> None:
    """The test Redis database starts empty, like the test database: arq's job ids of
    an earlier session (same campaign ids, a new SQLite file) would dedupe this one's."""
    from redis.asyncio import Redis

    redis = Redis.from_url(settings.redis_url or "")
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


@pytest_asyncio.fixture(scope="session")
async def http(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=60) as client:
        yield client


@dataclass
class Api:
    """One workspace's view of the service over real HTTP."""

    http: httpx.AsyncClient
    key: str
    principal: Principal

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        """Run an operation; fail the test on top-level errors."""
        body = await self.raw(query, **variables)
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def raw(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables}, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def create_campaign(self, **fields: Any) -> dict[str, Any]:
        given = {"name": "Spring sale", "body": "Hi {{name}}, 20% off today."} | fields
        data = await self.gql(CREATE, input=given)
        assert data["createCampaign"]["userErrors"] == [], data
        return data["createCampaign"]["campaign"]

    async def add(self, campaign_id: str, *recipients: tuple[str, Any]) -> dict[str, Any]:
        data = await self.gql(
            ADD,
            input={
                "campaignId": campaign_id,
                "recipients": [{"phone": p, "variables": v} for p, v in recipients],
            },
        )
        return data["addRecipients"]

    async def ready_campaign(self, n: int = 3, **fields: Any) -> dict[str, Any]:
        """A DRAFT campaign with `n` valid recipients."""
        campaign = await self.create_campaign(**fields)
        result = await self.add(campaign["id"], *[(phone(i), {"name": f"User {i}"}) for i in range(n)])
        assert result["added"] == n, result
        return campaign


def phone(i: int) -> str:
    """The i-th distinct valid US mobile number (E.164)."""
    return f"+1415{2000000 + i:07d}"


CAMPAIGN_FIELDS = """
  id name status allowedActions statusReason scheduledAt version
  stats { total pending sent delivered read failed cancelled progress deliveryRate readRate failureRate }
"""
CREATE = f"""mutation($input: CreateCampaignInput!) {{
  createCampaign(input: $input) {{ campaign {{ {CAMPAIGN_FIELDS} }} userErrors {{ field message code }} }}
}}"""
ADD = f"""mutation($input: AddRecipientsInput!) {{
  addRecipients(input: $input) {{
    campaign {{ {CAMPAIGN_FIELDS} }} added duplicates optedOut
    invalid {{ index phone reason }} userErrors {{ field message code }}
  }}
}}"""


async def _new_api(http: httpx.AsyncClient, name: str) -> Api:
    workspace, key = await create_workspace(name, "tester")
    return Api(http=http, key=key, principal=Principal(workspace_id=workspace.id, actor="tester"))


@pytest_asyncio.fixture
async def api(http: httpx.AsyncClient) -> Api:
    return await _new_api(http, "Test workspace")


@pytest_asyncio.fixture
async def other_api(http: httpx.AsyncClient) -> Api:
    """A second, independent workspace in the same test."""
    return await _new_api(http, "Other workspace")


@pytest.fixture
def business_clock() -> Iterator[ModuleType]:
    """runtime/clock.py, to move in a test (`advance`, `travel_to`); back to the system
    clock afterwards, whatever the test did."""
    from runtime import clock

    clock.set_offset(0)
    try:
        yield clock
    finally:
        clock.set_offset(0)


@pytest_asyncio.fixture
async def quiet_schedules(api: Api) -> AsyncIterator[None]:
    """No recurring schedule of the shared test database is live during the test but its
    own, and none is after it: run_due (and the sweep that calls it) acts on every due
    schedule, and a test moving the clock would run what other tests left behind."""
    from domain.lifecycle import LIVE_SCHEDULE, ScheduleStatus
    from models import RecurringSchedule

    async def end_all() -> None:
        await RecurringSchedule.filter(status__in=LIVE_SCHEDULE).update(status=ScheduleStatus.ENDED, next_run_at=None)

    await end_all()
    try:
        yield
    finally:
        await end_all()
