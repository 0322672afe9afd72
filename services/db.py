"""Raw SQL across the two dialects, for the paths the ORM makes slow or imprecise.

Statements are written once with `?` placeholders; on PostgreSQL they become `$1..$n`.
Counts of affected rows come from the driver itself (Tortoise's asyncpg client reports
the OID, not the count, for INSERT).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionContext
from tortoise.connection import get_connections
from tortoise.transactions import in_transaction as tortoise_transaction

__all__ = [
    "among",
    "client",
    "execute",
    "fetch",
    "fetch_positional",
    "fetch_val",
    "in_transaction",
    "is_postgres",
    "timestamp",
    "update_each",
]


@asynccontextmanager
async def in_transaction() -> AsyncIterator[BaseDBAsyncClient]:
    """A transaction; on SQLite it takes the write lock at BEGIN.

    Tortoise begins SQLite transactions DEFERRED. One that reads first and writes later
    then fails at once with "database is locked" when another process (API vs worker)
    writes meanwhile: the lock upgrade cannot wait. BEGIN IMMEDIATE waits busy_timeout
    for the lock instead, so concurrent writers queue up rather than fail.

    Tortoise 1.1 puts its transaction client in the task's context before BEGIN and
    takes it out after giving the connection back. When BEGIN fails (the database
    restarting, a cancellation) or the give-back does (a broken connection), the client
    stays in the context: every later transaction of that task nests into a dead one
    ("connection has been released back to the pool") for the task's whole life, and
    the connection, or SQLite's transaction lock, is never given back. `_left_behind`
    undoes that.
    """
    context = tortoise_transaction()
    try:
        conn = await context.__aenter__()
    except BaseException:
        await _left_behind(context)
        raise
    try:
        if not is_postgres(conn):
            raw = conn._connection  # type: ignore[attr-defined]
            await raw.execute("ROLLBACK")  # the deferred BEGIN has done nothing yet
            await raw.execute("BEGIN IMMEDIATE")
        yield conn
    except BaseException as exc:
        try:
            await context.__aexit__(type(exc), exc, exc.__traceback__)
        finally:
            await _left_behind(context)
        raise
    else:
        try:
            await context.__aexit__(None, None, None)
        finally:
            await _left_behind(context)


async def _left_behind(context: TransactionContext) -> None:
    """After a transaction context ended, however: if its client is still in this
    task's context, take it out and give back what it held."""
    token = getattr(context, "token", None)  # set once the client went into the context
    if token is None or token._used:
        return
    get_connections().reset(token)
    lock = getattr(context, "_trxlock", None)  # SQLite: held from before the token was set
    if lock is not None and lock.locked():
        lock.release()
    client = getattr(context, "client", None)  # PostgreSQL: a pooled connection
    pool = getattr(getattr(client, "_parent", None), "_pool", None)
    held = getattr(client, "_connection", None)
    if pool is not None and held is not None:
        with suppress(Exception):  # already given back, or broken: asyncpg replaces it
            await pool.release(held)


def client() -> BaseDBAsyncClient:
    return connections.get("default")


def is_postgres(conn: BaseDBAsyncClient | None = None) -> bool:
    return (conn or client()).capabilities.dialect == "postgres"


@lru_cache(maxsize=512)
def _to_dollar(query: str) -> str:
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _m: f"${next(counter)}", query)


def _sql(conn: BaseDBAsyncClient, query: str) -> str:
    return _to_dollar(query) if is_postgres(conn) else query


async def execute(conn: BaseDBAsyncClient, query: str, params: Sequence[Any] = ()) -> int:
    """Run a write statement; return the number of rows it affected."""
    if is_postgres(conn):
        async with conn.acquire_connection() as raw:
            status: str = await raw.execute(_sql(conn, query), *params)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0
    count, _rows = await conn.execute_query(query, list(params))
    return count


async def fetch(conn: BaseDBAsyncClient, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    return await conn.execute_query_dict(_sql(conn, query), list(params))


async def fetch_rows(conn: BaseDBAsyncClient, query: str, params: Sequence[Any] = ()) -> Sequence[Mapping[str, Any]]:
    """As `fetch`, for hot paths: on PostgreSQL asyncpg's records as they come (read by
    key like dicts), without building a dict per row."""
    if is_postgres(conn):
        async with conn.acquire_connection() as raw:
            rows: Sequence[Mapping[str, Any]] = await raw.fetch(_sql(conn, query), *params)
            return rows
    return await fetch(conn, query, params)


async def fetch_positional(conn: BaseDBAsyncClient, query: str, params: Sequence[Any] = ()) -> Sequence[Sequence[Any]]:
    """As `fetch`, for hot paths reading many columns: the rows as the driver gives them
    (sqlite3.Row, asyncpg Record), read by position. No dict per row: dict() of a
    sqlite3.Row looks every column up by name through the columns, which was a fifth of
    a 20-campaign page's time."""
    async with conn.acquire_connection() as raw:
        if is_postgres(conn):
            records: Sequence[Sequence[Any]] = await raw.fetch(_sql(conn, query), *params)
            return records
        rows: Sequence[Sequence[Any]] = await raw.execute_fetchall(query, list(params))
        return rows


def among(conn: BaseDBAsyncClient, column: str, values: Sequence[Any], kind: str = "bigint") -> tuple[str, object]:
    """`column` is one of `values` (`kind` their PostgreSQL type): the condition and its
    one parameter, whatever their number (ANY of an array; SQLite: json_each of JSON)."""
    if is_postgres(conn):
        return f"{column} = ANY(?::{kind}[])", list(values)
    return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(list(values))


def timestamp(value: Any) -> datetime | None:
    """A timestamp as a driver returns it (SQLite: ISO text, sometimes without an
    offset), UTC-aware; None stays None."""
    if value is None:
        return None
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(at, datetime)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def fetch_val(conn: BaseDBAsyncClient, query: str, params: Sequence[Any] = ()) -> Any:
    rows = await fetch(conn, query, params)
    return next(iter(rows[0].values())) if rows else None


async def lock_rows(
    conn: BaseDBAsyncClient, table: str, ids: Iterable[int], columns: str = "id"
) -> Sequence[Mapping[str, Any]]:
    """Row locks in id order (PostgreSQL; SQLite's transactions are serial already), and
    the rows' `columns` as read under the locks (none on SQLite).

    Lock order everywhere: the campaign row(s) first, then message rows by id. Workers
    writing outcomes, receipts and status changes all touch both; one order means
    they queue instead of deadlocking."""
    ordered = sorted(ids)
    if not ordered or not is_postgres(conn):
        return []
    sql = f"SELECT {columns} FROM {table} WHERE id = ANY(?::bigint[]) ORDER BY id FOR UPDATE"
    return await fetch_rows(conn, sql, [ordered])


_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


def _named(sql: str, values: dict[str, Any]) -> tuple[str, list[Any]]:
    """`:name` placeholders to `?`, with their values in the order they appear."""
    order: list[Any] = []

    def take(match: re.Match[str]) -> str:
        order.append(values[match.group(1)])
        return "?"

    return _NAMED.sub(take, sql), order


async def update_each(
    conn: BaseDBAsyncClient,
    table: str,
    assignments: str,
    condition: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    **scalars: Any,
) -> list[int]:
    """One UPDATE for many rows, each with its own values; returns the ids it changed.

    `rows` are (id, *values of `columns`), `columns` (name, PostgreSQL type) pairs. The
    SQL refers to the table as `t`, to a row's values as `v.<name>` and to `scalars` as
    `:<name>`: `UPDATE <table> t SET <assignments> ... WHERE t.id = v.id AND <condition>`.
    PostgreSQL reads the rows from unnest() of typed arrays, SQLite from json_each() of
    one JSON array: a single statement either way, whatever the number of rows."""
    if not rows:
        return []
    names = ["id", *(name for name, _ in columns)]
    if is_postgres(conn):
        types = ["bigint", *(kind for _, kind in columns)]
        source = f"unnest({', '.join(f':_c{i}::{kind}[]' for i, kind in enumerate(types))}) AS v({', '.join(names)})"
        arrays = {f"_c{i}": list(column) for i, column in enumerate(zip(*rows, strict=True))}
        scalars = scalars | arrays
        returning = "RETURNING t.id"  # qualified: v has an id too
    else:
        picks = ", ".join(f"json_extract(value, '$[{i}]') AS {name}" for i, name in enumerate(names))
        source = f"(SELECT {picks} FROM json_each(:_rows)) AS v"
        scalars = scalars | {"_rows": json.dumps([list(row) for row in rows])}
        returning = "RETURNING id"  # SQLite's RETURNING names the updated table's columns only
    sql, params = _named(
        f"UPDATE {table} AS t SET {assignments} FROM {source} WHERE t.id = v.id AND ({condition}) {returning}",
        scalars,
    )
    return [int(r["id"]) for r in await fetch(conn, sql, params)]
