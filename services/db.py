"""Raw SQL across the two dialects, for the paths the ORM makes slow or imprecise.

Statements are written once with `?` placeholders; on PostgreSQL they become `$1..$n`.
Counts of affected rows come from the driver itself (Tortoise's asyncpg client reports
the OID, not the count, for INSERT).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

__all__ = ["client", "execute", "fetch", "fetch_val", "in_transaction", "is_postgres"]


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
