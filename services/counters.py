"""Moving a campaign's counters (and its billable counts): in the caller's transaction.

Counters live on the campaign row and move in the same transaction as the message rows
they count, so at rest they equal a GROUP BY over the messages (docs/DESIGN.md,
"Numbers"). Every writer that changes message statuses moves them through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from domain.stats import STAT_FIELDS
from services import db


async def move(conn: BaseDBAsyncClient, campaign_id: int, *, receipt_at: datetime | None = None, **deltas: int) -> None:
    """`UPDATE campaign SET <counter> = <counter> + ?, ...` for the non-zero deltas;
    `receipt_at` also records when receipts last moved the campaign's messages."""
    unknown = set(deltas) - set(STAT_FIELDS)
    if unknown:
        raise ValueError(f"not campaign counters: {sorted(unknown)}")
    moving = {name: delta for name, delta in deltas.items() if delta}
    sets = [f'"{name}" = "{name}" + ?' for name in moving]
    params: list[object] = list(moving.values())
    if receipt_at is not None:
        sets.append("last_receipt_at = ?")
        params.append(receipt_at)
    if not sets:
        return
    await db.execute(conn, f"UPDATE campaign SET {', '.join(sets)} WHERE id = ?", [*params, campaign_id])


async def move_billable(conn: BaseDBAsyncClient, counts: Mapping[tuple[int, str], int]) -> None:
    """Add to campaigns' billable counts per pricing category (`campaign_billable`),
    in campaign id order (the lock order), with the `message.billable_category` rows
    they count, in the caller's transaction."""
    for (campaign_id, category), n in sorted(counts.items()):
        if n:
            await db.execute(
                conn,
                "INSERT INTO campaign_billable (campaign_id, category, count) VALUES (?, ?, ?) "
                "ON CONFLICT (campaign_id, category) DO UPDATE SET count = campaign_billable.count + excluded.count",
                [campaign_id, category, n],
            )
