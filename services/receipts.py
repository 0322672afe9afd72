"""Delivery receipts applied in bulk: one transaction per call, idempotent, in order of
strength, with the campaign counters moving in the same transaction.

For a batch of receipts:
  1. find their messages: by our message id (from `biz_opaque_callback_data`), else by
     the provider's message id -- one SELECT per ~1,000 ids; a receipt about another
     send than the one the row stands for (an earlier send round, another provider
     message) is set aside (domain.receipts.belongs);
  2. fold each message's receipts in order of strength (domain.receipts.fold), so a
     batch holding read-then-delivered ends READ and a duplicate changes nothing; a
     message whose accepted send was never recorded (in doubt) folds as SENDING, so its
     first status settles it;
  3. write every status change with ONE statement per ~1,000 messages, each row
     conditional on the status it was read in (`... WHERE m.id = v.id AND m.status =
     v.observed RETURNING id`): a row a concurrent writer (the sending worker) changed
     in between is not written, so it cannot be counted twice. Those rows are re-read
     once and folded again from their new status;
  4. move each touched campaign's counters with one `SET x = x + ?` UPDATE, in campaign
     id order, and note when receipts last moved it (reconciliation reads that).

A status whose `pricing` says the message is billable sets its `billable_category` the
first time one does (statuses repeat and come out of order: later ones change nothing),
and counts it once in the campaign's CampaignBillable row of that category. A failure
with 131050 (the user stopped marketing messages) opts the phone out in the campaign's
workspace (services/optouts.py), after every campaign and message row it locks; one
with 131049 (the per-user marketing limit) puts the message to wait instead
(services/waiting.py), in a campaign still sending.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from domain.messages import MessageStatus, failure_text
from domain.optouts import MARKETING_STOPPED, OptOutSource
from domain.receipts import NO_CHANGE, Deltas, Folded, belongs, fold, fold_start
from domain.sending import Receipt
from domain.waiting import MARKETING_LIMIT
from services import counters, db, optouts, waiting

__all__ = ["CHUNK", "ReceiptReport", "apply_receipts"]

#: ids per SELECT ... IN (...) and rows per UPDATE statement
CHUNK = 1000
#: a row that changed under us is re-read this many times, then left to its new writer
_REREADS = 1
_COLUMNS = ("sent_at", "delivered_at", "read_at", "failed_at")
#: statuses a message may be billed in while its status stays: accepted ones
_BILLED = frozenset({MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ})


@dataclass
class ReceiptReport:
    applied: int = 0  # receipts that moved a message
    unchanged: int = 0  # duplicates, late or weaker events, messages in no state to move
    unknown: int = 0  # no such message
    #: about a message another number sent (refused: webhooks are routed by number)
    foreign: int = 0
    #: about another send than the row's now: an earlier round, or a second copy
    stale: int = 0
    #: campaigns whose messages (and counters) moved: the progress publisher's input
    campaign_ids: set[int] = field(default_factory=set)
    #: messages counted billable for the first time
    billable: int = 0
    #: phones opted out by a 131050 failure
    opted_out: int = 0
    #: messages failed with 131049 that wait to be sent again (domain/waiting.py)
    deferred: int = 0


@dataclass(slots=True)
class _Row:
    id: int
    campaign_id: int
    status: MessageStatus
    provider_message_id: str | None
    send_round: int
    error_code: str | None
    billable_category: str | None = None
    receipts: list[int] = field(default_factory=list)  # indexes into the batch


@dataclass(slots=True)
class _Plan:
    row: _Row
    folded: Folded
    #: the category a receipt bills the message in, when the row has none yet
    billable: str | None = None


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _when(receipt: Receipt, now: datetime) -> datetime:
    if receipt.timestamp and receipt.timestamp > 0:
        try:
            return datetime.fromtimestamp(receipt.timestamp, UTC)
        except (OverflowError, OSError, ValueError):
            return now
    return now


_SELECTED = "id, campaign_id, status, provider_message_id, send_round, error_code, billable_category"


async def _select(conn: BaseDBAsyncClient, column: str, values: Sequence[Any]) -> Sequence[Mapping[str, Any]]:
    """Messages whose `column` is one of `values` (a chunk of at most CHUNK)."""
    base = f"SELECT {_SELECTED} FROM message WHERE {column} "
    if db.is_postgres(conn):
        cast = "bigint" if column == "id" else "text"
        return await db.fetch_rows(conn, base + f"= ANY(?::{cast}[])", [list(values)])
    marks = ",".join("?" * len(values))
    return await db.fetch(conn, base + f"IN ({marks})", list(values))


def _row(found: Mapping[str, Any]) -> _Row:
    return _Row(
        id=int(found["id"]),
        campaign_id=int(found["campaign_id"]),
        status=MessageStatus(found["status"]),
        provider_message_id=found["provider_message_id"],
        send_round=int(found["send_round"]),
        error_code=found["error_code"],
        billable_category=found["billable_category"],
    )


async def _find(conn: BaseDBAsyncClient, receipts: Sequence[Receipt]) -> tuple[dict[int, _Row], int]:
    """The messages the receipts are about, each with its receipts; and how many
    receipts found no message."""
    rows: dict[int, _Row] = {}
    by_ours: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(receipts):
        if r.message_id is not None:
            by_ours[r.message_id].append(i)
    ids = sorted(by_ours)
    for chunk in _chunks(ids):
        for found in await _select(conn, "id", chunk):
            row = rows[int(found["id"])] = _row(found)
            row.receipts.extend(by_ours.pop(row.id))
    # receipts without our id, or with an id we do not know: by the provider's id
    by_theirs: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(receipts):
        if (r.message_id is None or r.message_id in by_ours) and r.provider_message_id:
            by_theirs[r.provider_message_id].append(i)
    unknown = sum(1 for r in receipts if (r.message_id is None or r.message_id in by_ours))
    theirs = sorted(by_theirs)
    for chunk in _chunks(theirs):
        for found in sorted(await _select(conn, "provider_message_id", chunk), key=lambda f: int(f["id"])):
            indexes = by_theirs.pop(found["provider_message_id"], None)
            if indexes is None:
                continue  # two rows with one provider id: the first (lowest id) takes it
            row = rows.get(int(found["id"])) or rows.setdefault(int(found["id"]), _row(found))
            row.receipts.extend(indexes)
            unknown -= len(indexes)
    return rows, unknown


async def _route(
    conn: BaseDBAsyncClient, rows: dict[int, _Row], receipts: Sequence[Receipt], bootstrap: str | None
) -> int:
    """Drop the receipts about a message sent from another number than the one the
    webhook names (`metadata.phone_number_id`): each number has one workspace, so no
    webhook can move another workspace's messages, whatever message ids it carries.
    A wire receipt names its number ("" when the payload had no metadata, which Meta
    never sends: it matches no number); None means it is not from the wire (tests,
    tools) and is kept. A campaign without a sender is checked against the bootstrap
    number when there is one. Returns how many were dropped."""
    numbered = {
        r.campaign_id for r in rows.values() if any(receipts[i].phone_number_id is not None for i in r.receipts)
    }
    if not numbered:
        return 0
    ids = sorted(numbered)
    marks = ",".join("?" * len(ids))
    found = await db.fetch_rows(
        conn,
        f"SELECT c.id, s.phone_number_id AS number FROM campaign c LEFT JOIN sender s ON s.id = c.sender_id "
        f"WHERE c.id IN ({marks})",
        ids,
    )
    number_of = {int(f["id"]): (f["number"] if f["number"] is not None else bootstrap) for f in found}
    dropped = 0
    for row in rows.values():
        number = number_of.get(row.campaign_id)
        kept = []
        for i in row.receipts:
            said = receipts[i].phone_number_id
            if said is not None and number is not None and said != number:
                dropped += 1
            else:
                kept.append(i)
        row.receipts = kept
    return dropped


def _plans(rows: Sequence[_Row], receipts: Sequence[Receipt], report: ReceiptReport) -> list[_Plan]:
    """Fold each message's receipts; those that change nothing are counted here."""
    plans = []
    for row in rows:
        mine = []
        for i in row.receipts:
            r = receipts[i]
            if belongs(r.send_round, r.provider_message_id, row.send_round, row.provider_message_id):
                mine.append(i)
            else:
                report.stale += 1
        row.receipts = mine
        if not mine:
            continue
        start = fold_start(row.status, row.error_code, row.provider_message_id)
        folded = fold(start, [receipts[i].status for i in mine], counted_as=row.status)
        billable = None
        if row.billable_category is None:
            billable = next((c for i in mine if (c := receipts[i].billable_category) is not None), None)
        if folded.applied or (billable is not None and folded.status in _BILLED):
            plans.append(_Plan(row, folded, billable))
        else:
            report.unchanged += len(mine)
    return plans


_SET = (
    "status = v.target, "
    "provider_message_id = COALESCE(m.provider_message_id, v.pid), "
    "sent_at = COALESCE(m.sent_at, v.sent_at), "
    "delivered_at = COALESCE(m.delivered_at, v.delivered_at), "
    "read_at = COALESCE(m.read_at, v.read_at), "
    "failed_at = CASE WHEN v.target = 'FAILED' THEN COALESCE(v.failed_at, m.failed_at) ELSE NULL END, "
    # a failure replaces whatever was said before (an in_doubt failure gets the real
    # code); any other status clears it (a settled in-doubt message has no error)
    "error_code = CASE WHEN v.target = 'FAILED' THEN COALESCE(v.error_code, m.error_code) ELSE NULL END, "
    "error_message = CASE WHEN v.target = 'FAILED' THEN COALESCE(v.error_message, m.error_message) ELSE NULL END, "
    "billable_category = COALESCE(m.billable_category, v.billable), "
    "doubt_at = NULL"
)
_V = "id, observed, target, pid, sent_at, delivered_at, read_at, failed_at, error_code, error_message, billable"
_UPDATE_PG = (
    f"UPDATE message AS m SET {_SET} FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], "
    "?::timestamptz[], ?::timestamptz[], ?::timestamptz[], ?::timestamptz[], ?::text[], ?::text[], ?::text[]) "
    f"AS v({_V}) WHERE m.id = v.id AND m.status = v.observed RETURNING m.id"
)
_UPDATE_SQLITE = (
    f"UPDATE message AS m SET {_SET} FROM (SELECT "
    + ", ".join(f"json_extract(value, '$[{n}]') AS {name.strip()}" for n, name in enumerate(_V.split(",")))
    + " FROM json_each(?)) AS v WHERE m.id = v.id AND m.status = v.observed RETURNING id"
)


def _values(plan: _Plan, receipts: Sequence[Receipt], now: datetime) -> tuple[Any, ...]:
    row, folded = plan.row, plan.folded
    stamps = [
        _when(receipts[row.receipts[folded.timestamps[c]]], now) if c in folded.timestamps else None for c in _COLUMNS
    ]
    pid = None
    if row.provider_message_id is None:
        pid = next((receipts[i].provider_message_id for i in row.receipts if receipts[i].provider_message_id), None)
    code = message = None
    if folded.failed_by is not None:
        failure = receipts[row.receipts[folded.failed_by]]
        code, message = failure.error_code, failure_text(failure.error_code, failure.error_message)
    return (row.id, row.status.value, folded.status.value, pid, *stamps, code, message, plan.billable)


async def _write(
    conn: BaseDBAsyncClient, plans: Sequence[_Plan], receipts: Sequence[Receipt], now: datetime
) -> set[int]:
    """Write the plans, each conditional on its observed status; the ids written."""
    written: set[int] = set()
    postgres = db.is_postgres(conn)
    for chunk in _chunks(plans):
        values = [_values(p, receipts, now) for p in chunk]
        if postgres:
            params: list[Any] = [list(column) for column in zip(*values, strict=True)]
            rows = await db.fetch(conn, _UPDATE_PG, params)
        else:
            encoded = json.dumps(
                [[v.isoformat(" ") if isinstance(v, datetime) else v for v in value] for value in values]
            )
            rows = await db.fetch(conn, _UPDATE_SQLITE, [encoded])
        written.update(int(r["id"]) for r in rows)
    return written


async def _move_counters(conn: BaseDBAsyncClient, deltas: dict[int, Deltas], now: datetime) -> None:
    for campaign_id in sorted(deltas):  # the lock order: campaigns by id
        await counters.move(conn, campaign_id, receipt_at=now, **asdict(deltas[campaign_id]))


async def apply_receipts(
    receipts: Sequence[Receipt],
    conn: BaseDBAsyncClient | None = None,
    also_lock: set[int] | None = None,
    *,
    bootstrap_number: str | None = None,
) -> ReceiptReport:
    """Apply a batch of receipts in one transaction (or in `conn`'s, the inbox
    applier's); see the module docstring. `also_lock`: campaigns the caller will write
    in the same transaction after this (inbound replies), locked here with the
    receipts' own in one id order. `bootstrap_number`: the phone number id campaigns
    without a sender send from (WHATSAPP_PHONE_NUMBER_ID)."""
    if conn is None:
        async with db.in_transaction() as own:
            return await apply_receipts(receipts, own, also_lock, bootstrap_number=bootstrap_number)
    report = ReceiptReport()
    if not receipts:
        return report
    now = datetime.now(UTC)
    deltas: dict[int, Deltas] = defaultdict(lambda: NO_CHANGE)
    billable: dict[tuple[int, str], int] = defaultdict(int)
    stopped: list[int] = []
    limited: dict[int, str | None] = {}
    rows, report.unknown = await _find(conn, receipts)
    report.foreign = await _route(conn, rows, receipts, bootstrap_number)
    todo = [row for row in rows.values() if row.receipts]
    if (todo or also_lock) and db.is_postgres(conn):
        # the lock order every writer follows (services/db.lock_rows); the message
        # rows' statuses as read under their locks replace the unlocked read's
        await db.lock_rows(conn, "campaign", {row.campaign_id for row in todo} | (also_lock or set()))
        locked = await db.lock_rows(conn, "message", [row.id for row in todo], _SELECTED)
        todo = _refreshed({row.id: row for row in todo}, locked)
    for attempt in range(_REREADS + 1):
        plans = _plans(todo, receipts, report)
        if not plans:
            break
        written = await _write(conn, plans, receipts, now)
        missed: list[_Row] = []
        for plan in plans:
            if plan.row.id in written:
                report.applied += plan.folded.applied
                report.unchanged += plan.folded.unchanged
                report.campaign_ids.add(plan.row.campaign_id)
                deltas[plan.row.campaign_id] += plan.folded.deltas
                if plan.billable is not None:
                    billable[(plan.row.campaign_id, plan.billable)] += 1
                    plan.row.billable_category = plan.billable
                if plan.folded.failed_by is not None:
                    failure = receipts[plan.row.receipts[plan.folded.failed_by]]
                    if failure.error_code == MARKETING_STOPPED:
                        stopped.append(plan.row.id)
                    elif failure.error_code == MARKETING_LIMIT:
                        limited[plan.row.id] = failure.error_message
            else:
                missed.append(plan.row)
        if not missed:
            break
        if attempt == _REREADS:
            # changed under us twice: its latest writer's word stands
            report.unchanged += sum(len(row.receipts) for row in missed)
            break
        todo = await _reread(conn, missed)
        report.unchanged += sum(len(r.receipts) for r in missed) - sum(len(r.receipts) for r in todo)
    await _move_counters(conn, deltas, now)
    if limited:  # failed, then waiting: counters move back from failed to pending
        report.deferred = sum((await waiting.defer_failed(conn, limited, now)).values())
    await counters.move_billable(conn, billable)
    report.billable = sum(billable.values())
    if stopped:
        report.opted_out = await optouts.learn_for_messages(
            conn, stopped, OptOutSource.ERROR_131050, "failed with 131050: marketing messages stopped", now
        )
    return report


async def _reread(conn: BaseDBAsyncClient, missed: Sequence[_Row]) -> list[_Row]:
    """The rows' current status (a row deleted meanwhile drops out)."""
    by_id = {row.id: row for row in missed}
    found = [f for chunk in _chunks(sorted(by_id)) for f in await _select(conn, "id", chunk)]
    return _refreshed(by_id, found)


def _refreshed(by_id: dict[int, _Row], found: Sequence[Mapping[str, Any]]) -> list[_Row]:
    """`by_id`'s rows updated from a fresh read; those not found (deleted) drop out."""
    fresh: list[_Row] = []
    for f in found:
        row = by_id[int(f["id"])]
        row.status = MessageStatus(f["status"])
        row.provider_message_id = f["provider_message_id"]
        row.send_round = int(f["send_round"])
        row.error_code = f["error_code"]
        row.billable_category = f["billable_category"]
        fresh.append(row)
    return fresh
