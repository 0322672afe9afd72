"""What people send back, applied in the inbox applier's transaction (services/inbox.py),
so each webhook body is applied exactly once, with its receipts:

- an inbound message counts as a reply for the latest message sent to that phone in
  its workspace (`message.replied_at`, the campaign's `replied` counter), once per
  message, only if it was written after that message was sent;
- an inbound text that is, as a whole, one of the workspace's stop keywords opts the
  phone out (KEYWORD);
- a `user_preferences` change of marketing messages: `stop` opts the phone out
  (USER_PREFERENCES), `resume` lifts an opt-out Meta's own signals made
  (domain/optouts.LIFTED_BY_RESUME) if it is not newer than the resume.

Which workspace an inbound webhook belongs to is decided in ONE place, `workspace_for`.
Every effect is idempotent (a reply is counted only while `replied_at` is empty, an
opt-out learned only once), so a body Meta posts twice changes nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from domain.inbound import REPLY_CLOCK_SLACK_S, Inbound, InboundMessage, PreferenceChange, phone_of
from domain.optouts import LIFTED_BY_RESUME, MARKETING_CATEGORY, RESUME, STOP, OptOutSource, stop_keyword
from services import counters, db, optouts

log = logging.getLogger("campaigns.inbound")


async def workspace_for(conn: BaseDBAsyncClient, phone_number_id: str | None, wa_id: str) -> int | None:
    """The workspace an inbound webhook from `wa_id` to the business number
    `phone_number_id` belongs to, or None when none is known.

    A connected sender's number decides: it is live in one workspace (services/senders).
    Any other number is the deployment's bootstrap sender (WHATSAPP_PHONE_NUMBER_ID),
    which sends for every workspace without a sender of its own: there the workspace is
    that of the most recent message sent to the phone by a campaign without a sender."""
    if phone_number_id:
        owner = await db.fetch_val(
            conn,
            "SELECT workspace_id FROM sender WHERE phone_number_id = ? AND disconnected_at IS NULL",
            [phone_number_id],
        )
        if owner is not None:
            return int(owner)
    phone = phone_of(wa_id)
    if phone is None:
        return None
    found = await db.fetch_val(
        conn,
        "SELECT c.workspace_id FROM message m JOIN campaign c ON c.id = m.campaign_id "
        "WHERE m.phone = ? AND m.sent_at IS NOT NULL AND c.sender_id IS NULL "
        "ORDER BY m.sent_at DESC, m.id DESC LIMIT 1",
        [phone],
    )
    return int(found) if found is not None else None


@dataclass(frozen=True, slots=True)
class Reply:
    message_id: int
    campaign_id: int
    at: datetime


@dataclass
class Plan:
    """What a batch of inbound events will do, read before anything is locked: the
    campaigns whose rows it will lock (to lock them with the receipts', in one order)."""

    replies: dict[int, Reply] = field(default_factory=dict)  # by message id: the first reply
    stops: dict[int, list[optouts.Entry]] = field(default_factory=dict)  # by workspace
    resumes: list[tuple[int, str, datetime]] = field(default_factory=list)
    unrouted: int = 0

    @property
    def campaign_ids(self) -> set[int]:
        return {r.campaign_id for r in self.replies.values()}


@dataclass
class InboundReport:
    messages: int = 0
    replies: int = 0
    opted_out: int = 0
    lifted: int = 0
    #: events whose workspace is not known (no message was ever sent to the phone)
    unrouted: int = 0
    campaign_ids: set[int] = field(default_factory=set)


def _when(timestamp: int, now: datetime) -> datetime:
    if timestamp > 0:
        try:
            return datetime.fromtimestamp(timestamp, UTC)
        except (OverflowError, OSError, ValueError):
            return now
    return now


async def _reply_target(conn: BaseDBAsyncClient, workspace_id: int, phone: str, at: datetime) -> Reply | None:
    """The latest message of the workspace sent to `phone` before the reply was written."""
    rows = await db.fetch(
        conn,
        "SELECT m.id, m.campaign_id FROM message m JOIN campaign c ON c.id = m.campaign_id "
        "WHERE m.phone = ? AND c.workspace_id = ? AND m.sent_at IS NOT NULL AND m.sent_at <= ? "
        "ORDER BY m.sent_at DESC, m.id DESC LIMIT 1",
        [phone, workspace_id, at + timedelta(seconds=REPLY_CLOCK_SLACK_S)],
    )
    return Reply(int(rows[0]["id"]), int(rows[0]["campaign_id"]), at) if rows else None


async def plan(conn: BaseDBAsyncClient, events: Sequence[Inbound]) -> Plan:
    """Route each event to its workspace and decide its effects (reads only)."""
    found = Plan()
    now = datetime.now(UTC)
    routes: dict[tuple[str | None, str], int | None] = {}
    keywords: dict[int, tuple[str, ...]] = {}
    for event in events:
        phone = phone_of(event.wa_id)
        key = (event.phone_number_id, event.wa_id)
        if key not in routes:
            routes[key] = await workspace_for(conn, event.phone_number_id, event.wa_id)
        workspace_id = routes[key]
        if phone is None or workspace_id is None:
            found.unrouted += 1
            continue
        at = _when(event.timestamp, now)
        if isinstance(event, InboundMessage):
            reply = await _reply_target(conn, workspace_id, phone, at)
            if reply is not None and (reply.message_id not in found.replies or at < found.replies[reply.message_id].at):
                found.replies[reply.message_id] = reply
            if workspace_id not in keywords:
                keywords[workspace_id] = await optouts.stop_keywords(workspace_id, conn)
            keyword = stop_keyword(event.body, keywords[workspace_id]) if event.kind == "text" else None
            if keyword is not None:
                entry = optouts.Entry(phone, OptOutSource.KEYWORD, f'replied "{keyword}"', at)
                found.stops.setdefault(workspace_id, []).append(entry)
        elif isinstance(event, PreferenceChange) and event.category == MARKETING_CATEGORY:
            if event.value == STOP:
                detail = event.detail or "stopped marketing messages in WhatsApp"
                found.stops.setdefault(workspace_id, []).append(
                    optouts.Entry(phone, OptOutSource.USER_PREFERENCES, detail, at)
                )
            elif event.value == RESUME:
                found.resumes.append((workspace_id, phone, at))
    return found


async def apply(conn: BaseDBAsyncClient, planned: Plan, messages: int = 0) -> InboundReport:
    """Apply a plan in the caller's transaction. Campaign rows are locked first, in id
    order (services/db.lock_rows), unless the receipts of the same transaction locked
    them already with theirs (apply_receipts' `also_lock`)."""
    report = InboundReport(messages=messages, unrouted=planned.unrouted)
    replies = sorted(planned.replies.values(), key=lambda r: r.message_id)
    if replies:
        await db.lock_rows(conn, "campaign", {r.campaign_id for r in replies})
    moved: dict[int, int] = {}
    for reply in replies:
        done = await db.execute(
            conn, "UPDATE message SET replied_at = ? WHERE id = ? AND replied_at IS NULL", [reply.at, reply.message_id]
        )
        if done:
            moved[reply.campaign_id] = moved.get(reply.campaign_id, 0) + 1
    for campaign_id in sorted(moved):
        await counters.move(conn, campaign_id, replied=moved[campaign_id])
    report.replies = sum(moved.values())
    report.campaign_ids = set(moved)
    # Opt-outs last: a table no campaign writer locks before its campaign rows.
    for workspace_id, entries in sorted(planned.stops.items()):
        report.opted_out += await optouts.learn(conn, workspace_id, entries)
    for workspace_id, phone, at in planned.resumes:
        report.lifted += await optouts.lift(conn, workspace_id, phone, LIFTED_BY_RESUME, not_after=at)
    if report.opted_out or report.lifted:
        log.info("inbound: %s phones opted out, %s opt-outs lifted", report.opted_out, report.lifted)
    return report
