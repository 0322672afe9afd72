"""Webhook receipts at Meta's volume: durable before the 200, applied in bulk after.

Meta posts about three statuses per sent message, mostly one per POST, wants a median
answer under 250 ms and retries for days what is not answered 2xx (docs/STACK.md). So
the endpoint does as little as it can while holding the request:
- `InboxWriter.put(body)` adds the signed body to the next group commit: one task
  INSERTs every body that arrived while the previous INSERT ran, in one statement and
  one transaction, and only then answers their requests. The inbox table is touched by
  nobody else, so the answer never waits for a campaign's busy rows.
- `InboxApplier` takes the oldest bodies in batches (SKIP LOCKED on PostgreSQL, so
  several API processes share the work), applies their receipts with
  services.receipts, and what people sent back (replies, stop keywords, marketing
  preferences) with services.inbound, in the same transaction that deletes them, and
  tells the progress publisher which campaigns moved. A crash anywhere leaves the bodies in the table,
  applied later, exactly once (the delete commits with the application).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from domain.inbound import Inbound
from providers.whatsapp import TemplateUpdate, parse_inbound, parse_status_webhook, parse_template_updates
from runtime.background import Background
from services import db, template_updates
from services import inbound as inbound_service
from services.inbound import InboundReport
from services.receipts import ReceiptReport, apply_receipts

log = logging.getLogger("campaigns.inbox")

#: inbox rows applied per transaction
APPLY_BATCH = 2000
#: once woken, the applier lets receipts gather this long: one transaction applies
#: hundreds of them at Meta's rate instead of a few, and the lag stays well under a second
GATHER_S = 0.2
#: a poll now and then finds what another process (or a previous life) left
IDLE_POLL_S = 1.0


async def insert(bodies: list[str]) -> None:
    """One INSERT for many bodies: a single statement in autocommit, so one round trip
    (and one WAL flush) makes all of them durable."""
    now, conn = datetime.now(UTC), db.client()
    if db.is_postgres(conn):
        sql = "INSERT INTO webhook_inbox (received_at, body) SELECT ?, unnest(?::text[])"
        await db.execute(conn, sql, [now, bodies])
    else:
        sql = "INSERT INTO webhook_inbox (received_at, body) SELECT ?, value FROM json_each(?)"
        await db.execute(conn, sql, [now, json.dumps(bodies)])


class InboxWriter:
    """Group commit of webhook bodies: `put` returns once its body is committed. Up to
    `overlap` commits are in flight at once (PostgreSQL: while one waits for its WAL
    flush the next group gathers and goes; SQLite has one writer, so one)."""

    def __init__(self, on_commit: Callable[[], None] | None = None, overlap: int | None = None) -> None:
        self.on_commit = on_commit
        self.overlap = overlap
        self._waiting: list[tuple[str, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._background = Background("inbox-writer", self._run, log)
        self._commits: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._background.start()

    async def close(self) -> None:
        await self._background.stop()  # its commits in flight have finished by then
        for _, future in self._waiting:
            if not future.done():
                future.set_exception(ConnectionError("the inbox writer stopped"))
        self._waiting = []

    async def put(self, body: str) -> None:
        """Durable once this returns; raises if the commit failed (answer 5xx: Meta retries)."""
        if not self._background.running:
            raise ConnectionError("the inbox writer is not running")
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((body, future))
        self._wake.set()
        # A request cancelled meanwhile (the client went away) cancels only this future:
        # its body is in the group all the same, and the others are answered.
        await future

    async def _run(self) -> None:
        overlap = self.overlap or (2 if db.is_postgres() else 1)
        slots = asyncio.Semaphore(overlap)
        try:
            while True:
                await self._wake.wait()
                await slots.acquire()  # the group grows while every slot is busy
                self._wake.clear()
                batch, self._waiting = self._waiting, []
                if not batch:
                    slots.release()
                    continue
                task = asyncio.create_task(self._commit(batch))
                self._commits.add(task)
                task.add_done_callback(self._commits.discard)
                task.add_done_callback(lambda _: slots.release())
        finally:
            await asyncio.gather(*self._commits, return_exceptions=True)

    async def _commit(self, batch: list[tuple[str, asyncio.Future[None]]]) -> None:
        try:
            await insert([body for body, _ in batch])
        except Exception as exc:
            log.warning("committing %s webhook bodies failed: %s", len(batch), exc)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for _, future in batch:
            if not future.done():
                future.set_result(None)
        if self.on_commit is not None:
            self.on_commit()


@dataclass(frozen=True, slots=True)
class Batch:
    rows: int
    report: ReceiptReport
    #: the id of the last row taken
    last: int = 0
    #: what the batch's inbound messages and preference changes did
    inbound: InboundReport | None = None


class InboxApplier:
    """Applies what the inbox holds, oldest first, until it is empty; then waits."""

    def __init__(
        self,
        touched: Callable[[Iterable[int]], None] | None = None,
        batch: int = APPLY_BATCH,
        bootstrap_number: str | None = None,
    ) -> None:
        """`bootstrap_number`: the phone number id of campaigns without a sender
        (WHATSAPP_PHONE_NUMBER_ID): their receipts must name it."""
        self.touched = touched
        self.bootstrap_number = bootstrap_number
        self.batch = batch
        self._wake = asyncio.Event()
        self._background = Background("inbox-applier", self._run, log)
        #: receipts applied since start (metrics, tests)
        self.applied = 0

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._background.start()

    async def close(self) -> None:
        await self._background.stop()

    async def _run(self) -> None:
        failing = False
        while True:
            self._wake.clear()  # before the batch: a commit meanwhile wakes the next one
            try:
                taken = (await self.apply_once()).rows
                failing = False
            except Exception as exc:
                if not failing:
                    log.warning("applying webhook receipts failed (%s); retrying", exc)
                failing = True
                await asyncio.sleep(0.5)
                continue
            if taken < self.batch:
                try:
                    async with asyncio.timeout(IDLE_POLL_S):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                await asyncio.sleep(GATHER_S)

    async def apply_once(self, limit: int | None = None, after: int = 0) -> Batch:
        """Apply and delete one batch (the oldest rows, or those after `after`): how many
        inbox rows it took, what they did. A batch that fails is applied row by row, so
        one body that cannot be applied never holds up the others."""
        try:
            return await self._apply(limit or self.batch, after)
        except Exception as exc:
            if (limit or self.batch) == 1:
                raise
            log.warning("a batch of webhook bodies failed (%s); applying them one by one", exc)
        return await self._one_by_one(limit or self.batch, after)

    async def _one_by_one(self, limit: int, after: int) -> Batch:
        total, report = 0, ReceiptReport()
        for _ in range(limit):
            try:
                done = await self._apply(1, after)
            except Exception:
                try:  # once more: a passing failure must not cost a good body
                    done = await self._apply(1, after)
                except Exception:
                    after = await self._set_aside(after)
                    continue
            if not done.rows:
                break
            total += done.rows
            after = done.last
            report.applied += done.report.applied
        return Batch(total, report, after)

    async def _set_aside(self, after: int) -> int:
        """The next body cannot be applied: logged whole (to be replayed by hand) and
        removed, so that what comes after it is applied."""
        async with db.in_transaction() as conn:
            lock = " FOR UPDATE SKIP LOCKED" if db.is_postgres(conn) else ""
            sql = f"SELECT id, body FROM webhook_inbox WHERE id > ? ORDER BY id LIMIT 1{lock}"
            rows = await db.fetch_rows(conn, sql, [after])
            if not rows:
                return after
            poison = rows[0]
            log.error("webhook body %s could not be applied and is set aside: %s", poison["id"], poison["body"])
            await _delete(conn, [int(poison["id"])])
            return int(poison["id"])

    async def _apply(self, limit: int, after: int) -> Batch:
        async with db.in_transaction() as conn:
            lock = " FOR UPDATE SKIP LOCKED" if db.is_postgres(conn) else ""
            sql = f"SELECT id, body FROM webhook_inbox WHERE id > ? ORDER BY id LIMIT ?{lock}"
            rows = await db.fetch_rows(conn, sql, [after, limit])
            if not rows:
                return Batch(0, ReceiptReport())
            receipts = []
            events: list[Inbound] = []
            updates: list[TemplateUpdate] = []
            for row in rows:
                try:
                    payload = json.loads(row["body"])
                except ValueError:
                    log.warning("inbox row %s is not JSON; dropped", row["id"])
                    continue
                receipts.extend(parse_status_webhook(payload))
                events.extend(parse_inbound(payload))
                updates.extend(parse_template_updates(payload))
            # Inbound effects are decided first (reads only), so that the campaign rows
            # they write are locked with the receipts', in one order.
            planned = await inbound_service.plan(conn, events) if events else None
            report: ReceiptReport = await apply_receipts(
                receipts,
                conn,
                also_lock=planned.campaign_ids if planned else None,
                bootstrap_number=self.bootstrap_number,
            )
            back = await inbound_service.apply(conn, planned, len(events)) if planned else None
            await _delete(conn, [int(r["id"]) for r in rows])
        if updates:
            # after the commit: pausing a campaign is a transition of its own
            await template_updates.apply_updates(updates)
        self.applied += report.applied
        moved = report.campaign_ids | (back.campaign_ids if back else set())
        if self.touched is not None and moved:
            self.touched(moved)
        return Batch(len(rows), report, int(rows[-1]["id"]), back)


async def _delete(conn: BaseDBAsyncClient, ids: list[int]) -> None:
    if db.is_postgres(conn):
        await db.execute(conn, "DELETE FROM webhook_inbox WHERE id = ANY(?::bigint[])", [ids])
    else:
        await db.execute(
            conn, "DELETE FROM webhook_inbox WHERE id IN (SELECT value FROM json_each(?))", [json.dumps(ids)]
        )


async def drain(applier: InboxApplier) -> None:
    """Apply until the inbox is empty (tests, shutdown)."""
    while (await applier.apply_once()).rows >= applier.batch:
        pass
