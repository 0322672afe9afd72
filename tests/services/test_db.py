"""services/db.py on the real database: a transaction that fails to begin or to end
leaves nothing behind in its task (Tortoise 1.1 would leave its client in the task's
context, and the connection or SQLite's transaction lock taken)."""

from __future__ import annotations

import asyncio

from tortoise.connection import get_connections

from services import db
from tests.conftest import Api


async def _one(conn_sql: str = "SELECT 1") -> None:
    async with db.in_transaction() as conn:
        await conn.execute_query(conn_sql)


async def test_cancellations_at_every_point_of_a_transaction_leave_the_task_and_the_pool_clean(api: Api) -> None:
    """A deploy's SIGTERM, a timeout around a renewal: cancellations land anywhere,
    also inside BEGIN and COMMIT. Afterwards the same task's next transaction works,
    and as many transactions as the pool holds still run at once."""
    base = db.client()
    loop = asyncio.get_running_loop()
    cut = 0
    for step in range(400):
        try:
            async with asyncio.timeout_at(loop.time() + step * 0.00001):  # 0 to 4 ms in
                await _one()
        except TimeoutError:
            cut += 1
        assert get_connections().get("default") is base, f"a transaction client stayed in the context at {step}"
        await asyncio.wait_for(_one(), 5)  # the same task goes on as if nothing happened
    assert cut > 0  # the storm did cut transactions short

    async def held() -> None:
        async with db.in_transaction() as conn:
            await conn.execute_query("SELECT 1")
            await asyncio.sleep(0.05)

    await asyncio.wait_for(asyncio.gather(*(held() for _ in range(12))), 10)  # nothing leaked


async def test_a_failure_inside_the_transaction_rolls_back_and_the_task_goes_on(api: Api) -> None:
    base = db.client()
    for _ in range(3):
        try:
            await _one("SELECT no_such_column FROM webhook_inbox")
        except Exception as exc:
            assert "no_such_column" in str(exc)
        else:
            raise AssertionError("the bad statement passed")
        assert get_connections().get("default") is base
    await asyncio.wait_for(_one(), 5)
