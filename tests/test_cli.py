"""The `campaigns` command, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.auth import authenticate
from settings import Settings


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
