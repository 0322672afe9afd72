"""Adding and removing recipients of a DRAFT campaign, and the DRAFT exit guard's facts.

All writers of a campaign's recipients first take the gate: a conditional UPDATE on the
campaign row (status DRAFT) inside their transaction. On PostgreSQL that row lock
serialises them; SQLite has one writer anyway. Holding it, a writer knows no one else
inserts into this campaign, so duplicates can be filtered in memory and with indexed
look-ups, and PostgreSQL can load with COPY instead of INSERT ... ON CONFLICT
(about twice as fast for a million rows). Counters move in the same transaction.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from domain import lifecycle
from domain.campaign_input import MAX_BODY
from domain.errors import LimitExceeded
from domain.lifecycle import Action
from domain.recipients import MAX_RECIPIENTS_PER_CALL, InvalidRecipient, recipient
from domain.templates import length_parts, missing_variables, placeholders
from domain.timezones import TIMEZONE_VARIABLE, zone_of_number, zone_of_recipient
from models import Campaign
from services import counters, db
from services.auth import Principal
from services.campaigns import get_campaign, now_utc, refusal

#: Rows per round trip: big enough to amortise it, small enough for SQLite's
#: 32,766-parameter limit and to keep memory flat on a million-row import.
BATCH = 5_000
#: Invalid rows listed in a report; the count beyond it is still exact.
MAX_LISTED_INVALID = 1_000


@dataclass
class InvalidRow:
    index: int
    phone: str
    reason: str


@dataclass
class AddReport:
    added: int = 0
    duplicates: int = 0
    opted_out: int = 0
    invalid: list[InvalidRow] = field(default_factory=list)
    invalid_count: int = 0

    def reject(self, index: int, phone: str, reason: str) -> None:
        self.invalid_count += 1
        if len(self.invalid) < MAX_LISTED_INVALID:
            self.invalid.append(InvalidRow(index, phone, reason))


async def lock_draft(conn: BaseDBAsyncClient, principal: Principal, pk: int, action: Action) -> int:
    """Take the campaign's gate for `action` inside `conn`'s transaction; return its total."""
    locked = (
        await Campaign.filter(id=pk, workspace_id=principal.workspace_id, status__in=lifecycle.sources_of(action))
        .using_db(conn)
        .update(version=F("version") + 1, updated_at=now_utc())
    )
    if not locked:
        raise await refusal(principal, pk, action)
    return int(await db.fetch_val(conn, "SELECT total FROM campaign WHERE id = ?", [pk]))


class RecipientWriter:
    """Writes validated recipients into one campaign whose gate the caller holds."""

    def __init__(self, conn: BaseDBAsyncClient, campaign_id: int, workspace_id: int, existing: int) -> None:
        self.conn = conn
        self.campaign_id = campaign_id
        self.workspace_id = workspace_id
        self.check_existing = existing > 0
        self.check_opt_outs: bool | None = None  # looked up once, on the first batch
        self.seen: set[str] = set()
        self.report = AddReport()
        self._pending: list[tuple[str, str]] = []
        self._postgres = db.is_postgres(conn)
        #: the previous batch's COPY, still running while the next batch is parsed
        self._copy: asyncio.Task[None] | None = None

    async def add(self, phone: str, variables: str) -> None:
        """One valid recipient (E.164 phone, variables JSON); duplicates are counted."""
        if phone in self.seen:
            self.report.duplicates += 1
            return
        self.seen.add(phone)
        self._pending.append((phone, variables))
        if len(self._pending) >= BATCH:
            await self.flush()
        elif self._copy is not None and len(self._pending) % 256 == 0:
            await asyncio.sleep(0)  # let the COPY in flight push its data meanwhile

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        await self._wait_copy()  # one statement at a time on the connection
        if self.check_opt_outs is None:
            self.check_opt_outs = bool(
                await db.fetch(
                    self.conn,
                    "SELECT 1 AS x FROM opt_out WHERE workspace_id = ? LIMIT 1",
                    [self.workspace_id],
                )
            )
        if self.check_opt_outs:
            blocked = await self._present("opt_out", "workspace_id", self.workspace_id, batch)
            if blocked:
                self.report.opted_out += len(blocked)
                batch = [row for row in batch if row[0] not in blocked]
        if self.check_existing:
            known = await self._present("message", "campaign_id", self.campaign_id, batch)
            if known:
                self.report.duplicates += len(known)
                batch = [row for row in batch if row[0] not in known]
        if batch:
            self.report.added += len(batch)
            if self._postgres:
                # PostgreSQL ingests this batch on its own core while Python parses and
                # validates the next one: import time ~ max(parse, COPY), not the sum.
                self._copy = asyncio.create_task(self._insert(batch))
            else:
                await self._insert(batch)

    async def _wait_copy(self) -> None:
        if self._copy is not None:
            task, self._copy = self._copy, None
            await task

    async def close(self) -> None:
        """On failure: stop a COPY in flight before the transaction rolls back."""
        if self._copy is not None:
            self._copy.cancel()
            await asyncio.gather(self._copy, return_exceptions=True)
            self._copy = None

    async def finish(self) -> AddReport:
        await self.flush()
        await self._wait_copy()
        added = self.report.added
        await counters.move(self.conn, self.campaign_id, total=added, pending=added)
        return self.report

    async def _present(self, table: str, owner: str, owner_id: int, batch: Sequence[tuple[str, str]]) -> set[str]:
        phones = [row[0] for row in batch]
        if self._postgres:
            sql = f"SELECT phone FROM {table} WHERE {owner} = ? AND phone = ANY(?)"
            rows = await db.fetch(self.conn, sql, [owner_id, phones])
        else:
            marks = ",".join("?" * len(phones))
            sql = f"SELECT phone FROM {table} WHERE {owner} = ? AND phone IN ({marks})"
            rows = await db.fetch(self.conn, sql, [owner_id, *phones])
        return {row["phone"] for row in rows}

    async def _insert(self, batch: Sequence[tuple[str, str]]) -> None:
        cid = self.campaign_id
        rows = [(cid, phone, variables, _zone_of(phone, variables)) for phone, variables in batch]
        if self._postgres:
            async with self.conn.acquire_connection() as raw:
                await raw.copy_records_to_table(
                    "message",
                    records=[(*row, "PENDING", 0) for row in rows],
                    columns=["campaign_id", "phone", "variables", "time_zone", "status", "attempts"],
                )
        else:
            await self.conn.execute_many(
                "INSERT INTO message (campaign_id, phone, variables, time_zone, status, attempts) "
                "VALUES (?, ?, ?, ?, 'PENDING', 0)",
                [list(row) for row in rows],
            )


def _zone_of(phone: str, variables: str) -> str | None:
    """The recipient's zone (domain/timezones.py), read once, as it is added; the JSON is
    parsed only when it may hold the `timezone` variable."""
    if f'"{TIMEZONE_VARIABLE}"' in variables:
        parsed = json.loads(variables)
        if isinstance(parsed, dict):
            return zone_of_recipient(phone, parsed)
    return zone_of_number(phone)


async def add_recipients(principal: Principal, pk: int, recipients: Sequence[tuple[Any, Any]]) -> AddReport:
    """ADD_RECIPIENTS: invalid ones are reported by index with a reason, the rest added."""
    if len(recipients) > MAX_RECIPIENTS_PER_CALL:
        raise LimitExceeded(
            f"At most {MAX_RECIPIENTS_PER_CALL:,} recipients a call (got {len(recipients):,}); "
            "upload larger lists as CSV to POST /campaigns/{id}/recipients.",
            ("input", "recipients"),
        )
    await get_campaign(principal, pk)  # NOT_FOUND before any validation noise
    valid: list[tuple[str, str]] = []
    report_invalid: list[tuple[int, str, str]] = []
    for index, (phone, variables) in enumerate(recipients):
        try:
            valid.append(recipient(phone, variables))
        except InvalidRecipient as exc:
            report_invalid.append((index, str(phone), str(exc)))
    async with db.in_transaction() as conn:
        existing = await lock_draft(conn, principal, pk, Action.ADD_RECIPIENTS)
        writer = RecipientWriter(conn, pk, principal.workspace_id, existing)
        try:
            for row in report_invalid:
                writer.report.reject(*row)
            for phone, variables in valid:
                await writer.add(phone, variables)
            return await writer.finish()
        finally:
            await writer.close()


async def remove_recipients(principal: Principal, pk: int, phones: Sequence[str]) -> Campaign:
    """REMOVE_RECIPIENTS: phones not in the campaign are ignored."""
    if len(phones) > MAX_RECIPIENTS_PER_CALL:
        raise LimitExceeded(
            f"At most {MAX_RECIPIENTS_PER_CALL:,} phones a call (got {len(phones):,}).",
            ("input", "phones"),
        )
    wanted = sorted(set(_phone_forms(phones)))
    async with db.in_transaction() as conn:
        await lock_draft(conn, principal, pk, Action.REMOVE_RECIPIENTS)
        removed = 0
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            marks = ",".join("?" * len(chunk))
            removed += await db.execute(
                conn,
                f"DELETE FROM message WHERE campaign_id = ? AND phone IN ({marks})",
                [pk, *chunk],
            )
        await counters.move(conn, pk, total=-removed, pending=-removed)
    return await get_campaign(principal, pk)


def _phone_forms(phones: Iterable[str]) -> Iterable[str]:
    """Each phone as given and as E.164, so '+44 7911 123456' removes '+447911123456'."""
    for phone in phones:
        yield phone.strip()
        try:
            yield recipient(phone, None)[0]
        except InvalidRecipient:
            pass


@dataclass(frozen=True)
class LaunchReadiness:
    recipients: int
    missing_count: int
    missing_variables: tuple[tuple[str, tuple[str, ...]], ...]
    #: the recipient whose free-text message renders longest, and its length
    longest: tuple[str, int] | None = None


async def launch_facts(campaign: Campaign) -> LaunchReadiness:
    """Recipients; those lacking a variable the body uses (null or empty counts); and,
    for a free-text body, the longest message it renders to. One scan of the
    campaign's messages; a second query only to name a recipient at fault."""
    names = placeholders(campaign.body)
    if not names or not campaign.total:
        return LaunchReadiness(campaign.total, 0, ())
    conn = db.client()
    fixed, counts = length_parts(campaign.body)
    if db.is_postgres(conn):
        value, args = "variables->>?", list(names)
    else:
        value, args = "json_extract(variables, ?)", [f'$."{n}"' for n in names]
    lacks = " OR ".join(f"COALESCE({value}, '') = ''" for _ in names)
    length = " + ".join(f"{counts[n]} * COALESCE(length({value}), 0)" for n in names)
    free_text = campaign.template_name is None  # a template's parameters have Meta's own limits
    found = await db.fetch(
        conn,
        f"SELECT SUM(CASE WHEN {lacks} THEN 1 ELSE 0 END) AS missing, MAX({fixed} + {length}) AS longest "
        "FROM message WHERE campaign_id = ?",
        [*args, *args, campaign.id],
    )
    missing, longest = int(found[0]["missing"] or 0), int(found[0]["longest"] or 0)
    at_fault: tuple[str, int] | None = None
    if free_text and longest > MAX_BODY:
        longest_rows = await db.fetch(
            conn,
            f"SELECT phone FROM message WHERE campaign_id = ? AND {fixed} + {length} = ? ORDER BY id LIMIT 1",
            [campaign.id, *args, longest],
        )
        at_fault = (longest_rows[0]["phone"], longest)
    if not missing:
        return LaunchReadiness(campaign.total, 0, (), at_fault)
    where = f"campaign_id = ? AND ({lacks})"
    sample = await db.fetch(
        conn, f"SELECT phone, variables FROM message WHERE {where} ORDER BY id LIMIT 1", [campaign.id, *args]
    )
    row = sample[0]
    variables = row["variables"]
    if isinstance(variables, str):
        variables = json.loads(variables)
    return LaunchReadiness(campaign.total, missing, ((row["phone"], missing_variables(names, variables)),), at_fault)
