"""runtime/database.py against a real, new database (a SQLite file, or a PostgreSQL
database of its own when TEST_DATABASE_URL is set): migrate() builds every model's
table from the built-in migrations, is idempotent, and leaves no connection open;
orm() gives a command a working ORM and closes it however the command ends.

Each command runs as `campaigns` runs it, in a task context of its own, so it neither
sees nor closes the ORM the test session's app holds."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
from tortoise.models import Model
from tortoise.transactions import in_transaction

import models
from models import Workspace
from runtime.database import migrate, orm
from services.auth import authenticate, create_workspace
from settings import Settings
from tests.waiting import until

T = TypeVar("T")
MIGRATIONS = sorted(p.stem for p in (Path(models.__file__).parent / "migrations").glob("[0-9]*.py"))
MODELS = [m for m in vars(models).values() if inspect.isclass(m) and issubclass(m, Model) and m.__module__ == "models"]


async def as_a_command(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` in an empty context, as under the CLI's asyncio.run()."""
    return await asyncio.create_task(work, context=contextvars.Context())


@dataclass
class Database:
    """A new, empty database, inspected without the ORM."""

    settings: Settings
    sqlite_path: Path | None = None
    admin: asyncpg.Connection | None = None  # on the `postgres` database, for pg_stat_activity
    name: str = ""

    async def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.sqlite_path is not None:
            with sqlite3.connect(self.sqlite_path) as conn:
                rows = conn.execute(sql).fetchall()
            conn.close()
            return rows
        conn = await asyncpg.connect(_pg(self.settings.database_url, self.name))
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    async def columns(self) -> dict[str, set[str]]:
        """Each table's column names."""
        if self.sqlite_path is not None:
            tables = [r[0] for r in await self.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {
                t: {r[1] for r in await self.query(f'PRAGMA table_info("{t}")')}
                for t in tables
                if not t.startswith("sqlite_")
            }
        found: dict[str, set[str]] = {}
        sql = "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        for table, column in await self.query(sql):
            found.setdefault(table, set()).add(column)
        return found

    async def open_connections(self) -> int:
        """Connections this process (or anyone, on PostgreSQL) holds to the database."""
        if self.sqlite_path is not None:
            return _files_open_under(str(self.sqlite_path))  # the file, its -wal and its -shm
        assert self.admin is not None
        return int(await self.admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", self.name))

    async def all_closed(self) -> None:
        async def closed() -> bool:
            return await self.open_connections() == 0

        await until(closed, 5, "every connection to the database closed")


def _files_open_under(prefix: str) -> int:
    """How many of this process's file descriptors are open on paths starting so."""
    try:
        fds = os.listdir("/proc/self/fd")
    except FileNotFoundError:
        pytest.skip("no /proc/self/fd to see open files")
    return sum(os.path.realpath(f"/proc/self/fd/{fd}").startswith(prefix) for fd in fds)


def _pg(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql", path=f"/{name}"))


@pytest_asyncio.fixture
async def fresh(settings: Settings, is_postgres: bool, tmp_path: Path) -> AsyncIterator[Database]:
    if not is_postgres:
        path = tmp_path / "fresh.sqlite3"
        yield Database(dataclasses.replace(settings, database_url=f"sqlite://{path}"), sqlite_path=path)
        return
    name = f"campaigns_runtime_{os.getpid()}_{secrets.token_hex(3)}_test"
    admin = await asyncpg.connect(_pg(settings.database_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = urlunsplit(urlsplit(settings.database_url)._replace(path=f"/{name}"))
        yield Database(dataclasses.replace(settings, database_url=url), admin=admin, name=name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_migrate_builds_every_models_table_and_leaves_no_connection_open(fresh: Database) -> None:
    await as_a_command(migrate(fresh.settings))
    await fresh.all_closed()

    tables = await fresh.columns()
    for model in MODELS:
        table = model._meta.db_table
        assert tables.get(table) == set(model._meta.fields_db_projection.values()), table
    applied = await fresh.query("SELECT name FROM tortoise_migrations ORDER BY name")
    assert [r[0] for r in applied] == MIGRATIONS


async def test_migrate_again_changes_nothing_and_keeps_the_data(fresh: Database) -> None:
    await as_a_command(migrate(fresh.settings))
    schema = await fresh.columns()
    await fresh.query("INSERT INTO workspace (name, created_at) VALUES ('Kept', CURRENT_TIMESTAMP)")

    await as_a_command(migrate(fresh.settings))
    await fresh.all_closed()
    assert await fresh.columns() == schema
    assert [r[0] for r in await fresh.query("SELECT name FROM tortoise_migrations ORDER BY name")] == MIGRATIONS
    assert await fresh.query("SELECT name FROM workspace") == [("Kept",)]


async def test_a_command_reads_and_writes_through_orm_which_it_closes(fresh: Database) -> None:
    await as_a_command(migrate(fresh.settings))

    async def command() -> str:
        async with orm(fresh.settings):
            _workspace, key = await create_workspace("Acme", "cli")
            principal = await authenticate(key)
            assert principal is not None and principal.actor == "cli"
            assert await fresh.open_connections() > 0  # the ORM really was connected
            return key

    key = await as_a_command(command())
    await fresh.all_closed()
    assert await fresh.query("SELECT name FROM workspace") == [("Acme",)]

    async def later() -> bool:  # the next command sees what this one committed
        async with orm(fresh.settings):
            return await authenticate(key) is not None

    assert await as_a_command(later())
    await fresh.all_closed()


async def test_orm_closes_its_connections_when_the_command_fails(fresh: Database) -> None:
    await as_a_command(migrate(fresh.settings))

    async def failing() -> None:
        async with orm(fresh.settings):
            await Workspace.create(name="Half done")
            raise LookupError("the command failed")

    with pytest.raises(LookupError, match="the command failed"):
        await as_a_command(failing())
    await fresh.all_closed()


async def test_a_process_frozen_inside_a_transaction_cannot_hold_its_locks_for_ever(
    fresh: Database, is_postgres: bool
) -> None:
    """SIGSTOP or a paused VM in the middle of a transaction: PostgreSQL ends that
    session after DATABASE_IDLE_IN_TRANSACTION_S, so its row locks (a campaign row, the
    messages of a claim) stop blocking the sweep and the worker taking over."""
    if not is_postgres:
        pytest.skip("a SQLite file has no sessions to end: its writer holds the file lock")
    settings = dataclasses.replace(fresh.settings, database_idle_in_transaction_s=0.5)
    await as_a_command(migrate(settings))
    locked = asyncio.Event()

    async def frozen_holder() -> str:
        async with orm(settings):
            try:
                async with in_transaction() as conn:
                    shown = await conn.execute_query_dict("SHOW idle_in_transaction_session_timeout")
                    assert shown == [{"idle_in_transaction_session_timeout": "500ms"}]
                    await conn.execute_query("SELECT name FROM tortoise_migrations FOR UPDATE")
                    locked.set()
                    await asyncio.sleep(3)  # the fault itself: frozen, idle inside the transaction
                    await conn.execute_query("SELECT 1")
            except Exception as exc:  # the server ended the session
                return type(exc).__name__
            return "committed"

    holder = asyncio.create_task(as_a_command(frozen_holder()))
    await asyncio.wait_for(locked.wait(), 5)
    other = await asyncpg.connect(_pg(settings.database_url, fresh.name))
    try:
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(other.execute("UPDATE tortoise_migrations SET name = name"), 5)
        waited = asyncio.get_running_loop().time() - started
    finally:
        await other.close()
    assert waited < 2.0  # the lock went with the session after 0.5 s, not after the 3 s freeze
    assert await holder != "committed"
