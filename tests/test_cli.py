"""The `campaigns` command, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.auth import authenticate
from settings import Settings
from tests.processes import free_port
from tests.waiting import until


def run(*args: str, settings: Settings) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=settings.database_url, REDIS_URL=settings.redis_url or "")
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, timeout=60)


async def test_create_workspace_prints_a_working_key_on_its_last_line(server: str, settings: Settings) -> None:
    done = run("create-workspace", "Acme Marketing", settings=settings)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    principal = await authenticate(key)
    assert principal is not None and principal.actor == "default"


async def test_create_workspace_refuses_an_empty_name(server: str, settings: Settings) -> None:
    done = run("create-workspace", "  ", settings=settings)
    assert done.returncode != 0 and "empty" in done.stderr


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite://{tmp_path / 'm.sqlite3'}")
    for _ in range(2):
        done = run("migrate", settings=settings)
        assert done.returncode == 0, done.stderr
    import sqlite3

    tables = {
        r[0]
        for r in sqlite3.connect(tmp_path / "m.sqlite3").execute("select name from sqlite_master where type='table'")
    }
    assert {"workspace", "api_key", "campaign", "message", "campaign_event", "opt_out"} <= tables


def test_serve_and_worker_refuse_development_secrets_naming_the_variable(settings: Settings) -> None:
    """Finding 12: production started with an empty webhook secret, and a webhook signed
    with an empty HMAC key was accepted. Outside `campaigns dev` nothing starts so."""
    done = run("serve", "--port", "1", settings=settings)
    assert done.returncode == 2 and "WHATSAPP_ACCESS_TOKEN" in done.stderr and "development" in done.stderr
    env = dict(os.environ, DATABASE_URL=settings.database_url, WHATSAPP_APP_SECRET="", WHATSAPP_ACCESS_TOKEN="t")
    env |= {"WHATSAPP_VERIFY_TOKEN": "v", "REDIS_URL": settings.redis_url or ""}
    empty = subprocess.run([sys.executable, "-m", "cli", "serve"], capture_output=True, text=True, env=env, timeout=60)
    assert empty.returncode == 2 and "WHATSAPP_APP_SECRET: is empty" in empty.stderr
    worker = run("worker", settings=settings)
    assert worker.returncode == 2 and "WHATSAPP_ACCESS_TOKEN" in worker.stderr


async def test_serve_starts_without_redis_and_readyz_says_so(server: str, settings: Settings) -> None:
    """Finding 9: with Redis down `campaigns serve` exited at startup."""
    import asyncio

    import httpx

    port, dead_redis = free_port(), f"redis://127.0.0.1:{free_port()}/0"
    env = dict(os.environ, DATABASE_URL=settings.database_url, REDIS_URL=dead_redis)
    env |= {"WHATSAPP_ACCESS_TOKEN": "t", "WHATSAPP_APP_SECRET": "s", "WHATSAPP_VERIFY_TOKEN": "v"}
    env |= {"SENDER_TOKEN_KEY": "dGVzdC1zZW5kZXItdG9rZW4ta2V5LTMyLWJ5dGVzISE="}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "serve", "--port", str(port), env=env, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            async with asyncio.timeout(30):
                while True:
                    assert proc.returncode is None, "campaigns serve exited"
                    try:
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] == "ok"
            assert ready.json()["checks"]["redis"].startswith("error")
    finally:
        proc.terminate()
        await proc.wait()


async def test_keys_create_list_and_revoke_as_an_operator_does(server: str, settings: Settings) -> None:
    made = run("create-workspace", "Keys Inc", settings=settings)
    admin = made.stdout.strip().splitlines()[-1]
    created = run("keys", "create", "--workspace", "Keys Inc", "reporting", "--scopes", "read,send", settings=settings)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    principal = await authenticate(secret)
    assert principal is not None and {s.value for s in principal.scopes} == {"read", "send"}
    listed = run("keys", "list", "--workspace", "Keys Inc", settings=settings)
    lines = listed.stdout.strip().splitlines()
    assert len(lines) == 2 and "'reporting'  [read,send]" in lines[0] and "live" in lines[0]
    reporting_id, default_id = lines[0].split()[0], lines[1].split()[0]
    revoked = run("keys", "revoke", "--workspace", "Keys Inc", reporting_id, settings=settings)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert "revoked" in run("keys", "list", "--workspace", "Keys Inc", settings=settings).stdout.splitlines()[0]
    # the last admin key: only with the flag
    kept = run("keys", "revoke", "--workspace", "Keys Inc", default_id, settings=settings)
    assert kept.returncode == 1 and "last key with the admin scope" in kept.stderr
    forced = run("keys", "revoke", "--workspace", "Keys Inc", default_id, "--allow-last-admin", settings=settings)
    assert forced.returncode == 0, forced.stderr
    await until(lambda: _refused(admin), timeout=2, what="the revoked admin key refused")
    bad = run("keys", "create", "--workspace", "Keys Inc", "x", "--scopes", "owner", settings=settings)
    assert bad.returncode == 1 and "Unknown scope 'owner'" in bad.stderr
    unknown = run("keys", "list", "--workspace", "No Such Workspace", settings=settings)
    assert unknown.returncode == 2 and "no workspace" in unknown.stderr


async def _refused(key: str) -> bool:
    return await authenticate(key) is None
