"""Raw SQL across the two dialects, for the paths the ORM makes slow or imprecise.

Statements are written once with `?` placeholders; on PostgreSQL they become `$1..$n`.
Counts of affected rows come from the driver itself (Tortoise's asyncpg client reports
the OID, not the count, for INSERT).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction as tortoise_transaction

__all__ = ["client", "execute", "fetch", "fetch_val", "in_transaction", "is_postgres"]


@asynccontextmanager
async def in_transaction() -> AsyncIterator[BaseDBAsyncClient]:
    """A transaction; on SQLite it takes the write lock at BEGIN.

    Tortoise begins SQLite transactions DEFERRED. One that reads first and writes later
    then fails at once with "database is locked" when another process (API vs worker)
    writes meanwhile: the lock upgrade cannot wait. BEGIN IMMEDIATE waits busy_timeout
    for the lock instead, so concurrent writers queue up rather than fail.
    """
    async with tortoise_transaction() as conn:
        if not is_postgres(conn):
            raw = conn._connection  # type: ignore[attr-defined]
            await raw.execute("ROLLBACK")  # the deferred BEGIN has done nothing yet
            await raw.execute("BEGIN IMMEDIATE")
        yield conn


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


async def fetch_val(conn: BaseDBAsyncClient, query: str, params: Sequence[Any] = ()) -> Any:
    rows = await fetch(conn, query, params)
    return next(iter(rows[0].values())) if rows else None


async def lock_rows(
    conn: BaseDBAsyncClient, table: str, ids: Iterable[int], columns: str = "id"
) -> list[dict[str, Any]]:
    """Row locks in id order (PostgreSQL; SQLite's transactions are serial already), and
    the rows' `columns` as read under the locks (none on SQLite).

    Lock order everywhere: the campaign row(s) first, then message rows by id. Workers
    writing outcomes, receipts and status changes all touch both; one order means
    they queue instead of deadlocking."""
    ordered = sorted(ids)
    if not ordered or not is_postgres(conn):
        return []
    sql = f"SELECT {columns} FROM {table} WHERE id = ANY(?::bigint[]) ORDER BY id FOR UPDATE"
    return await fetch(conn, sql, [ordered])


def is_deadlock(error: BaseException) -> bool:
    return "deadlock detected" in str(error)
