"""The workspace's opt-out list (its suppression list): learning, lifting, reading.

Every writer goes through `learn` or `lift`, in its caller's transaction: the API and
the CSV import (MANUAL), the sending store and the receipts (ERROR_131050), the
inbound messages and preference changes (services/inbound.py). An opt-out is one row
per (workspace, phone), kept as first learned (`ON CONFLICT DO NOTHING`): a later
source does not rewrite when or how the person opted out. Honouring it is the sending
store's claim (services/sending_store.py), the recipients import and duplicateCampaign.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from domain.errors import LimitExceeded, NotFound, ValidationFailed
from domain.optouts import (
    DEFAULT_STOP_KEYWORDS,
    MAX_OPT_OUTS_PER_CALL,
    OptOutSource,
    clean_detail,
    parse_stop_keywords,
    search_form,
)
from domain.paging import Window
from domain.phones import InvalidPhone, normalize_phone
from models import Workspace
from services import db
from services.auth import Principal
from services.reads import Page, _keyset, _when

#: rows per INSERT: one statement, whatever the number of rows (unnest / json_each)
BATCH = 5_000
#: invalid rows listed in a report; the count beyond it stays exact
MAX_LISTED_INVALID = 1_000
OPT_OUTS_PAGE = 50


@dataclass(frozen=True, slots=True)
class OptOutRow:
    id: int
    phone: str
    source: OptOutSource
    detail: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Entry:
    """One opt-out to learn."""

    phone: str  # E.164
    source: OptOutSource
    detail: str | None
    at: datetime


@dataclass
class AddReport:
    added: int = 0
    #: valid phones that were on the list already (or twice in the input)
    already: int = 0
    invalid: list[tuple[int, str, str]] = field(default_factory=list)
    invalid_count: int = 0

    def reject(self, index: int, phone: str, reason: str) -> None:
        self.invalid_count += 1
        if len(self.invalid) < MAX_LISTED_INVALID:
            self.invalid.append((index, phone, reason))


def _stamp(at: datetime) -> Any:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


# ---------------------------------------------------------------- the writers


async def learn(conn: BaseDBAsyncClient, workspace_id: int, entries: Sequence[Entry]) -> int:
    """Add these opt-outs to the workspace's list (those it has already are kept as they
    are); how many were new."""
    added = 0
    for start in range(0, len(entries), BATCH):
        chunk = entries[start : start + BATCH]
        columns = [
            [e.phone for e in chunk],
            [e.source.value for e in chunk],
            [clean_detail(e.detail) for e in chunk],
            [_stamp(e.at) for e in chunk],
        ]
        if db.is_postgres(conn):
            source = "unnest(?::text[], ?::text[], ?::text[], ?::timestamptz[]) AS v(phone, source, detail, at)"
            params: list[Any] = [workspace_id, *columns]
        else:
            names = ("phone", "source", "detail", "at")
            picks = ", ".join(f"json_extract(value, '$[{i}]') AS {n}" for i, n in enumerate(names))
            source = f"(SELECT {picks} FROM json_each(?)) AS v"
            rows = [[e.phone, e.source.value, clean_detail(e.detail), _stamp(e.at).isoformat(" ")] for e in chunk]
            params = [workspace_id, json.dumps(rows)]
        # `WHERE true`: SQLite's parser needs a WHERE before an upsert's ON CONFLICT
        added += await db.execute(
            conn,
            "INSERT INTO opt_out (workspace_id, phone, source, detail, created_at) "
            f"SELECT ?, v.phone, v.source, v.detail, v.at FROM {source} WHERE true "
            "ON CONFLICT (workspace_id, phone) DO NOTHING",
            params,
        )
    return added


async def learn_for_messages(
    conn: BaseDBAsyncClient, message_ids: Sequence[int], source: OptOutSource, detail: str | None, at: datetime
) -> int:
    """Opt out the phones of these messages, each in its campaign's workspace."""
    if not message_ids:
        return 0
    ids = sorted(set(message_ids))
    params: list[Any]
    if db.is_postgres(conn):
        # parameters in a select list have no type of their own there
        given, which, params = "?::text, ?::text, ?::timestamptz", "m.id = ANY(?::bigint[])", [ids]
    else:
        given, which, params = "?, ?, ?", "m.id IN (SELECT value FROM json_each(?))", [json.dumps(ids)]
    return await db.execute(
        conn,
        "INSERT INTO opt_out (workspace_id, phone, source, detail, created_at) "
        f"SELECT DISTINCT c.workspace_id, m.phone, {given} FROM message m JOIN campaign c ON c.id = m.campaign_id "
        f"WHERE {which} ON CONFLICT (workspace_id, phone) DO NOTHING",
        [source.value, clean_detail(detail), _stamp(at), *params],
    )


async def lift(
    conn: BaseDBAsyncClient,
    workspace_id: int,
    phone: str,
    sources: frozenset[OptOutSource] | None = None,
    not_after: datetime | None = None,
) -> int:
    """Remove the phone's opt-out, if it came from one of `sources` (any when None) and
    was learned at or before `not_after` (a resume older than the stop lifts nothing)."""
    sql = "DELETE FROM opt_out WHERE workspace_id = ? AND phone = ?"
    params: list[Any] = [workspace_id, phone]
    if sources is not None:
        sql += f" AND source IN ({', '.join('?' for _ in sources)})"
        params += sorted(s.value for s in sources)
    if not_after is not None:
        sql += " AND created_at <= ?"
        params.append(_stamp(not_after))
    return await db.execute(conn, sql, params)


# ------------------------------------------------------------------ the API


def _phone(raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidPhone("phone must be a string")
    return normalize_phone(raw)


async def add_opt_outs(principal: Principal, phones: Sequence[object]) -> AddReport:
    """addOptOuts: valid phones are added (MANUAL), invalid ones reported by index."""
    if len(phones) > MAX_OPT_OUTS_PER_CALL:
        raise LimitExceeded(
            f"At most {MAX_OPT_OUTS_PER_CALL:,} phones a call (got {len(phones):,}); "
            "upload larger lists as CSV to POST /opt-outs.",
            ("phones",),
        )
    report = AddReport()
    now = datetime.now(UTC)
    detail = f"added by {principal.actor}"
    entries: dict[str, Entry] = {}
    for index, raw in enumerate(phones):
        try:
            phone = _phone(raw)
        except InvalidPhone as exc:
            report.reject(index, str(raw), str(exc))
            continue
        entries.setdefault(phone, Entry(phone, OptOutSource.MANUAL, detail, now))
    async with db.in_transaction() as conn:
        report.added = await learn(conn, principal.workspace_id, list(entries.values()))
    report.already = len(phones) - report.invalid_count - report.added
    return report


async def remove_opt_out(principal: Principal, raw: str) -> OptOutRow:
    """removeOptOut: the phone may be messaged again; the row as it was."""
    try:
        phone = _phone(raw)
    except InvalidPhone as exc:
        raise ValidationFailed(f"{raw!r} is not a valid phone: {exc}.", ("phone",)) from None
    async with db.in_transaction() as conn:
        sql = f"SELECT {_COLUMNS} FROM opt_out WHERE workspace_id = ? AND phone = ?"
        rows = await db.fetch(conn, sql, [principal.workspace_id, phone])
        if not rows:
            raise NotFound(f"{phone} is not on the opt-out list.", ("phone",))
        await lift(conn, principal.workspace_id, phone)
    return _row(rows[0])


_COLUMNS = "id, phone, source, detail, created_at"


def _row(raw: dict[str, Any]) -> OptOutRow:
    when = _when(raw["created_at"])
    assert when is not None
    return OptOutRow(int(raw["id"]), raw["phone"], OptOutSource(raw["source"]), raw["detail"], when)


@dataclass
class OptOutPage(Page):
    where: str
    params: list[Any]

    async def total_count(self) -> int:
        sql = f"SELECT COUNT(*) AS n FROM opt_out WHERE {self.where}"
        return int(await db.fetch_val(db.client(), sql, self.params) or 0)

    async def _exists(self, op: str, pk: int) -> bool:
        sql = f"SELECT 1 AS found FROM opt_out WHERE {self.where} AND id {op} ? LIMIT 1"
        return bool(await db.fetch(db.client(), sql, [*self.params, pk]))


async def list_opt_outs(
    principal: Principal, window: Window, search: str | None, source: OptOutSource | None
) -> OptOutPage:
    """The workspace's opt-outs, newest first; `search` matches part of the phone."""
    where = "workspace_id = ?"
    params: list[Any] = [principal.workspace_id]
    wanted = search_form(search)
    if wanted:
        where += " AND phone LIKE ?"
        params.append(f"%{wanted}%")  # digits and '+' only: nothing to escape
    if source is not None:
        where += " AND source = ?"
        params.append(source.value)
    bounds, read_descending = _keyset(window, descending=True)
    page_where = where + "".join(f" AND id {op} ?" for op, _ in bounds)
    rows = await db.fetch(
        db.client(),
        f"SELECT {_COLUMNS} FROM opt_out WHERE {page_where} ORDER BY id {'DESC' if read_descending else 'ASC'} LIMIT ?",
        [*params, *(pk for _, pk in bounds), window.size + 1],
    )
    return OptOutPage.of([_row(r) for r in rows], window, True, where=where, params=params)


async def get_opt_out(workspace_id: int, pk: int) -> OptOutRow | None:
    rows = await db.fetch(
        db.client(), f"SELECT {_COLUMNS} FROM opt_out WHERE workspace_id = ? AND id = ?", [workspace_id, pk]
    )
    return _row(rows[0]) if rows else None


async def export_rows(workspace_id: int, after: int, limit: int) -> list[OptOutRow]:
    """One page of the list in id order (the CSV export's keyset)."""
    rows = await db.fetch(
        db.client(),
        f"SELECT {_COLUMNS} FROM opt_out WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?",
        [workspace_id, after, limit],
    )
    return [_row(r) for r in rows]


# ---------------------------------------------------------------- stop keywords


def _keywords(stored: str | None) -> tuple[str, ...]:
    if not stored:
        return DEFAULT_STOP_KEYWORDS
    try:
        values = json.loads(stored)
    except ValueError:
        return DEFAULT_STOP_KEYWORDS
    kept = tuple(v for v in values if isinstance(v, str)) if isinstance(values, list) else ()
    return kept or DEFAULT_STOP_KEYWORDS


async def stop_keywords(workspace_id: int, conn: BaseDBAsyncClient | None = None) -> tuple[str, ...]:
    """The inbound messages that opt a phone out of this workspace."""
    stored = await db.fetch_val(conn or db.client(), "SELECT stop_keywords FROM workspace WHERE id = ?", [workspace_id])
    return _keywords(stored)


async def set_stop_keywords(principal: Principal, values: Sequence[object]) -> tuple[str, ...]:
    """setStopKeywords: every bad keyword refused by index, nothing written then."""
    keywords = parse_stop_keywords(values)
    await Workspace.filter(id=principal.workspace_id).update(stop_keywords=json.dumps(list(keywords)))
    return keywords
