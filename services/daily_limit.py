"""The senders' daily messaging limit over the database: who each sender messaged in
the moving window (`daily_contact`), the count a claim checks, and the messages it puts
to wait when the limit is reached (domain/senders.py decides what to admit).

WhatsApp caps, per sender, the unique recipients messaged per moving 24 hours
(docs/STACK.md, "Limits"); every campaign and every worker of the sender shares the one
count. The sending store's claim (services/sending_store.py) runs all of this in ONE
transaction per claim, serialised per sender: on PostgreSQL by a transaction-level
advisory lock on the sender's key, on SQLite by the write lock every transaction takes
at BEGIN (services/db.py). So two workers sending two campaigns of one sender never
both take the last slot. A phone counts from the claim of a message to it (not its
send: the claim is what serialises) until the window, plus a margin, has passed; its
row is rewritten by every later claim, and pruned by the claims that come after.

Times are the business clock's (runtime/clock.py): tests move it across the window.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from domain.senders import Admitted, DailyLimit, Tier, counted_since, counted_until, frees_at, stops_counting
from domain.senders import admit as admit_within
from domain.waiting import WaitReason
from runtime import clock
from services import db

log = logging.getLogger("campaigns.daily_limit")

#: expired rows a claim deletes at most: a claim notes at most its batch of new rows
#: (the run's concurrency, 200 by default), so pruning more than that per claim keeps a
#: sender's table about one window's worth of recipients
PRUNE_PER_CLAIM = 500
#: a row that counts at a time (since, until: domain/senders.counted_since/_until)
_COUNTING = "opened_at > ? AND opened_at <= ?"


def _lock_id(key: str) -> int:
    """The advisory lock of a sender's count: a stable signed 64-bit hash of its key
    (namespaced, so it cannot meet another use of advisory locks)."""
    digest = hashlib.blake2b(f"campaigns:daily_limit:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def serialise(conn: BaseDBAsyncClient, key: str) -> None:
    """Hold the sender's count until `conn`'s transaction ends (PostgreSQL; SQLite's
    transactions are serial already)."""
    if db.is_postgres(conn):
        await db.fetch(conn, "SELECT pg_advisory_xact_lock(?::bigint) AS held", [_lock_id(key)])


@dataclass(frozen=True, slots=True)
class Window:
    """A sender's recipients in the window at `now`: how many, and the oldest's time."""

    used: int
    oldest: datetime | None


async def window(conn: BaseDBAsyncClient, key: str, now: datetime) -> Window:
    row = await db.fetch(
        conn,
        f"SELECT COUNT(*) AS n, MIN(opened_at) AS oldest FROM daily_contact WHERE sender_key = ? AND {_COUNTING}",
        [key, counted_since(now), counted_until(now)],
    )
    return Window(int(row[0]["n"]), db.timestamp(row[0]["oldest"])) if row else Window(0, None)


async def counted(conn: BaseDBAsyncClient, key: str, phones: Sequence[str], now: datetime) -> set[str]:
    """Which of `phones` already count in the sender's window (they do not count again)."""
    if not phones:
        return set()
    among, values = db.among(conn, "phone", sorted(set(phones)), "text")
    rows = await db.fetch(
        conn,
        f"SELECT phone FROM daily_contact WHERE sender_key = ? AND {_COUNTING} AND {among}",
        [key, counted_since(now), counted_until(now), values],
    )
    return {str(r["phone"]) for r in rows}


async def note(conn: BaseDBAsyncClient, key: str, phones: Sequence[str], now: datetime) -> None:
    """The sender messages `phones` now: each counts (again) from `now`; and rows that
    no longer count are pruned (a bounded number per call)."""
    if phones:
        if db.is_postgres(conn):
            sql = (
                "INSERT INTO daily_contact (sender_key, phone, opened_at) "
                "SELECT ?::text, p.phone, ?::timestamptz FROM unnest(?::text[]) AS p(phone) "
            )
            values: object = sorted(set(phones))
        else:
            # WHERE true: SQLite's upsert after INSERT ... SELECT needs a WHERE to parse
            sql = "INSERT INTO daily_contact (sender_key, phone, opened_at) SELECT ?, value, ? FROM json_each(?) "
            values = json.dumps(sorted(set(phones)))
        await db.execute(
            conn,
            sql + "WHERE true ON CONFLICT (sender_key, phone) DO UPDATE SET opened_at = excluded.opened_at",
            [key, now, values],
        )
    await db.execute(
        conn,
        "DELETE FROM daily_contact WHERE id IN (SELECT id FROM daily_contact WHERE sender_key = ? "
        "AND opened_at <= ? ORDER BY opened_at LIMIT ?)",
        [key, counted_since(now), PRUNE_PER_CLAIM],
    )


async def hold(conn: BaseDBAsyncClient, campaign_id: int, key: str, now: datetime) -> datetime:
    """The limit refused some of the campaign's messages: its PENDING messages to new
    phones wait (`DAILY_LIMIT`) until the window frees a slot (at least a minute: a run
    does not churn). A message already waiting longer keeps its time; one to a phone
    that counts already stays claimable. Rows another transaction holds are skipped
    (a pause or cancel changing them; a later claim catches any left). Until when."""
    until = frees_at((await window(conn, key, now)).oldest, now)
    skip_locked = " FOR UPDATE SKIP LOCKED" if db.is_postgres(conn) else ""
    await db.execute(
        conn,
        "UPDATE message SET not_before = ?, wait_reason = ? WHERE id IN ("
        "SELECT id FROM message WHERE campaign_id = ? AND status = 'PENDING' "
        "AND (not_before IS NULL OR not_before < ?) AND NOT EXISTS (SELECT 1 FROM daily_contact d "
        f"WHERE d.sender_key = ? AND d.phone = message.phone AND d.opened_at > ? AND d.opened_at <= ?){skip_locked})",
        [until, WaitReason.DAILY_LIMIT.value, campaign_id, until, key, counted_since(now), counted_until(now)],
    )
    return until


async def admit(
    conn: BaseDBAsyncClient, limit: DailyLimit, candidates: Sequence[tuple[int, str]], now: datetime
) -> Admitted:
    """Of a claim's candidates, (id, phone): those it may take under the sender's limit
    at `now` (domain/senders.admit). Call under `serialise`."""
    ordered = sorted(candidates)
    seen = await window(conn, limit.key, now)
    already = await counted(conn, limit.key, [phone for _, phone in ordered], now)
    return admit_within(ordered, already, max(0, (limit.limit or 0) - seen.used))


async def claimed(
    conn: BaseDBAsyncClient, limit: DailyLimit, campaign_id: int, phones: Sequence[str], refused: int, now: datetime
) -> datetime | None:
    """After the claim, in its transaction: its phones count from `now`; when the limit
    refused some candidates, the campaign's messages to new phones wait (`hold`). Until
    when, if they do."""
    await note(conn, limit.key, phones, now)
    if not refused:
        return None
    until = await hold(conn, campaign_id, limit.key, now)
    log.info(
        "campaign %s: sender %s reached its daily limit (%s); messages to new phones wait until %s",
        campaign_id,
        limit.key,
        limit.tier.value,
        until.isoformat(),
    )
    return until


@dataclass(frozen=True, slots=True)
class DailyUsage:
    """A sender's messaging limit as a user sees it: its tier and limit (None:
    unlimited), the unique recipients counted in the window, and when the oldest of
    them stops counting (None: nobody counts)."""

    tier: Tier
    limit: int | None
    used: int
    resets_at: datetime | None


async def usage(limit: DailyLimit, now: datetime | None = None) -> DailyUsage:
    """What `limit`'s sender has used of it now. Recipients are noted only while the
    tier is limited: an unlimited sender's count stays empty."""
    at = now or clock.now()
    seen = await window(db.client(), limit.key, at)
    resets = stops_counting(seen.oldest) if seen.oldest is not None else None
    return DailyUsage(limit.tier, limit.limit, seen.used, resets)
