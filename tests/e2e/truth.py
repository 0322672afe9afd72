"""What the database says about a campaign, read directly (not through the API): its
counters, a GROUP BY over its messages, and what is still SENDING."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiosqlite
import asyncpg

COUNTERS = ("total", "pending", "sent", "delivered", "read", "failed", "cancelled")


@dataclass(frozen=True)
class Truth:
    status: str
    counters: dict[str, int]
    #: the same numbers counted from the message rows
    counted: dict[str, int]
    sending: int
    lease_owner: str | None


def _counted(by: dict[str, int]) -> dict[str, int]:
    sent = by.get("SENT", 0) + by.get("DELIVERED", 0) + by.get("READ", 0)
    return {
        "total": sum(by.values()),
        "pending": by.get("PENDING", 0) + by.get("SENDING", 0),
        "sent": sent,
        "delivered": by.get("DELIVERED", 0) + by.get("READ", 0),
        "read": by.get("READ", 0),
        "failed": by.get("FAILED", 0),
        "cancelled": by.get("CANCELLED", 0),
    }


_CAMPAIGN = "SELECT status, lease_owner, " + ", ".join(f'"{c}"' for c in COUNTERS) + " FROM campaign WHERE id = {}"
_BY_STATUS = "SELECT status, COUNT(*) AS n FROM message WHERE campaign_id = {} GROUP BY status"


async def read_truth(database_url: str, campaign_id: int) -> Truth:
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite://").split("?", 1)[0]
        async with aiosqlite.connect(path) as conn:
            conn.row_factory = aiosqlite.Row
            row = dict(await (await conn.execute(_CAMPAIGN.format("?"), [campaign_id])).fetchone() or {})
            by = {r[0]: int(r[1]) for r in await (await conn.execute(_BY_STATUS.format("?"), [campaign_id])).fetchall()}
    else:
        conn = await asyncpg.connect(urlunsplit(urlsplit(database_url)._replace(scheme="postgresql")))
        try:
            found = await conn.fetchrow(_CAMPAIGN.format("$1"), campaign_id)
            row = dict(found) if found else {}
            by = {r["status"]: int(r["n"]) for r in await conn.fetch(_BY_STATUS.format("$1"), campaign_id)}
        finally:
            await conn.close()
    return Truth(
        status=str(row["status"]),
        counters={c: int(row[c]) for c in COUNTERS},
        counted=_counted(by),
        sending=by.get("SENDING", 0),
        lease_owner=row["lease_owner"],
    )
