"""Status changes: the lifecycle table applied with one conditional UPDATE each.

`apply_action` reads the campaign, asks `domain.lifecycle` for the transition and its
guards, then in one transaction:
  1. UPDATE campaign SET status=<target>, version=version+1 ...
       WHERE id=? AND status=<source> AND version=<read version>
     -- zero rows means somebody else changed it first: re-read and decide again;
  2. moves the message rows the transition implies (CANCEL: pending -> cancelled;
     RETRY_FAILED: retryable failed -> pending) and the counters with them;
  3. writes the CampaignEvent row, and the outbound webhook deliveries that tell it
     (services/webhook_outbox.py).
So two racing mutations can never both win, and the history has no gaps.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from domain import lifecycle
from domain.delivery import LocalSend
from domain.errors import Conflict, ValidationFailed
from domain.lease import StopConfirmation
from domain.lifecycle import Action, CampaignStatus, LaunchFacts, Transition
from domain.messages import PERMANENT_RECIPIENT_ERRORS
from models import Campaign, CampaignEvent
from runtime import clock
from services import counters, db, delivery, templates, webhook_outbox
from services.auth import Principal
from services.campaigns import get_campaign, live_schedule_of, now_utc
from services.recipients import launch_facts

#: Called after a transition commits (the sending engine hooks in here: schedule a
#: job, tell a running worker to stop, and say how that stop was confirmed). Never
#: called inside the transaction; it must not raise for a change that committed.
AfterTransition = Callable[[Campaign, Transition], Awaitable[StopConfirmation | None]]


@dataclass(frozen=True, slots=True)
class Applied:
    """A user action applied: the campaign as it is now, and for a pause or cancel of a
    sending campaign, how the stop was confirmed."""

    campaign: Campaign
    stop: StopConfirmation | None = None


_ATTEMPTS = 5


def _permanent_placeholders() -> str:
    return ", ".join("?" for _ in PERMANENT_RECIPIENT_ERRORS)


_RETRYABLE = (
    f"campaign_id = ? AND status = 'FAILED' AND (error_code IS NULL OR error_code NOT IN ({_permanent_placeholders()}))"
)


async def count_retryable(conn: BaseDBAsyncClient, campaign_id: int) -> int:
    return int(
        await db.fetch_val(
            conn,
            f"SELECT COUNT(*) AS n FROM message WHERE {_RETRYABLE}",
            [campaign_id, *sorted(PERMANENT_RECIPIENT_ERRORS)],
        )
        or 0
    )


def _status_fields(
    t: Transition, now: datetime, reason: str | None, scheduled_at: datetime | None, local_send: LocalSend | None = None
) -> dict[str, Any]:
    """Columns that change with the status, besides status and version."""
    # waiting (domain/waiting.py) is noted by the claims of a PROCESSING campaign's run:
    # any change of status ends what was noted
    fields: dict[str, Any] = {"status": t.target, "updated_at": now, "next_send_at": None}
    action = t.action
    if action in (Action.SCHEDULE, Action.RESCHEDULE):
        fields.update(
            scheduled_at=scheduled_at,
            schedule_token=secrets.token_hex(8),
            local_send=local_send.to_json() if local_send is not None else None,
        )
    elif action is Action.UNSCHEDULE:
        fields.update(scheduled_at=None, schedule_token=None, local_send=None)
    elif action is Action.SEND_NOW:
        fields.update(schedule_token=None, local_send=None)
    if t.target is CampaignStatus.CANCELLED:
        # the lease stays: the run holding it sees the cancel and releases it
        fields.update(schedule_token=None, status_reason=reason)
    elif t.target in (CampaignStatus.PAUSED, CampaignStatus.FAILED):
        fields.update(status_reason=reason)
    elif t.target is CampaignStatus.QUEUED:
        fields.update(status_reason=None, completed_at=None)
    elif t.target is CampaignStatus.COMPLETED:
        fields.update(completed_at=now, status_reason=None)
    return fields


async def _move_messages(conn: BaseDBAsyncClient, campaign_id: int, action: Action) -> None:
    """Message rows and counters that move with the status, in the same transaction."""
    if action is Action.CANCEL:
        # Only PENDING: a SENDING message is in flight; its worker records the outcome.
        moved = await db.execute(
            conn,
            "UPDATE message SET status = 'CANCELLED' WHERE campaign_id = ? AND status = 'PENDING'",
            [campaign_id],
        )
        await counters.move(conn, campaign_id, pending=-moved, cancelled=moved)
    elif action is Action.RETRY_FAILED:
        moved = await db.execute(
            conn,
            # A new send round: a deliberate resend, with a new idempotency key, whose
            # receipts must never be confused with the last round's (they carry the round
            # in their callback data), so what the last round's send left is cleared.
            f"UPDATE message SET status = 'PENDING', error_code = NULL, error_message = NULL, "
            f"provider_message_id = NULL, sent_at = NULL, delivered_at = NULL, read_at = NULL, "
            f"failed_at = NULL, doubt_at = NULL, deferrals = 0, send_round = send_round + 1 WHERE {_RETRYABLE}",
            [campaign_id, *sorted(PERMANENT_RECIPIENT_ERRORS)],
        )
        await counters.move(conn, campaign_id, pending=moved, failed=-moved)


async def _commit(campaign: Campaign, t: Transition, fields: dict[str, Any], actor: str, reason: str | None) -> bool:
    """The transition as one transaction; False if the campaign changed since it was read."""
    async with db.in_transaction() as conn:
        won = (
            await Campaign.filter(id=campaign.id, status=t.source, version=campaign.version)
            .using_db(conn)
            .update(version=F("version") + 1, **fields)
        )
        if not won:
            return False
        await _move_messages(conn, campaign.id, t.action)
        event = await CampaignEvent.create(
            using_db=conn,
            campaign_id=campaign.id,
            from_status=t.source,
            to_status=t.target,
            action=t.action.value,
            actor=actor,
            reason=reason,
            # the change's one time: the campaign's updated_at (and completed_at), so a
            # webhook's `at` and `completedAt` are the times the API shows
            at=fields["updated_at"],
        )
        await webhook_outbox.record_change(
            conn,
            webhook_outbox.Change(
                campaign.id,
                campaign.workspace_id,
                campaign.name,
                t.source,
                t.target if t.target is not None else t.source,
                t.action.value,
                actor,
                reason,
                event.at,
            ),
        )
    return True


Plan = Callable[[Campaign], Awaitable["tuple[Transition, dict[str, Any]] | None"]]


class _Contended(Exception):
    """The campaign changed under every attempt."""


class _Stale(Exception):
    """A plan read facts the campaign no longer has: decide again from a new read."""


async def _apply(
    read: Callable[[], Awaitable[Campaign | None]],
    plan: Plan,
    actor: str,
    reason: str | None,
    after: AfterTransition | None,
) -> tuple[Campaign, StopConfirmation | None] | None:
    """Read, decide (the transition and its columns, or None to do nothing), commit
    conditionally; a lost race re-reads and decides again from the new status. After
    the commit, `after` runs and the campaign as it is now is returned."""
    for _ in range(_ATTEMPTS):
        campaign = await read()
        if campaign is None:
            return None
        try:
            planned = await plan(campaign)
        except _Stale:
            continue
        if planned is None:
            return None
        t, fields = planned
        if not await _commit(campaign, t, fields, actor, reason):
            continue  # lost a race: re-read and decide again from the new status
        updated = await read()
        assert updated is not None
        return updated, (await after(updated, t) if after is not None else None)
    raise _Contended


async def apply_action(
    principal: Principal,
    pk: int,
    action: Action,
    *,
    reason: str | None = None,
    scheduled_at: datetime | None = None,
    local_time: tuple[date, time] | None = None,
    after: AfterTransition | None = None,
) -> Applied:
    """Apply a user action that changes (or keeps) the status. `local_time` (SCHEDULE,
    RESCHEDULE): send at that date and wall-clock time in each recipient's zone, the
    campaign starting at the earliest (domain/delivery.LocalSend). Raises NotFound,
    InvalidTransition (naming the current status and allowed actions), ValidationFailed
    from a guard, or Conflict if the campaign kept changing under us."""

    async def plan(campaign: Campaign) -> tuple[Transition, dict[str, Any]]:
        t = lifecycle.transition(campaign.status, action)
        now = now_utc()
        when, local = scheduled_at, None
        local_times: tuple[datetime, ...] = ()
        if local_time is not None:
            local = LocalSend(local_time[0], local_time[1], clock.now())
            zones = await delivery.zones(db.client(), campaign.id) or [None]
            local_times = tuple(local.on_the_day(z or campaign.time_zone) for z in zones)
            when = min(local.instant(z or campaign.time_zone) for z in zones)
        try:
            await _check_guards(campaign, t, when, clock.now(), local_times)
        except ValidationFailed:
            # The guard read rows after the campaign was read: a change committed in
            # between (another RETRY_FAILED that took the failed messages) is refused
            # from the status it made, as any lost race is, not by a stale guard.
            if not await Campaign.filter(id=campaign.id, version=campaign.version).exists():
                raise _Stale from None
            raise
        return t, _status_fields(t, now, reason, when, local)

    try:
        done = await _apply(lambda: get_campaign(principal, pk), plan, principal.actor, reason, after)
    except _Contended:
        raise Conflict("The campaign kept changing while this request ran; try again.", ("id",)) from None
    assert done is not None  # get_campaign raises rather than return nothing
    return Applied(*done)


async def _check_guards(
    campaign: Campaign,
    t: Transition,
    scheduled_at: datetime | None,
    now: datetime,
    local_times: tuple[datetime, ...] = (),
) -> None:
    if t.action in (Action.SCHEDULE, Action.SEND_NOW):
        lifecycle.check_model_action(t.action, await live_schedule_of(campaign.workspace_id, campaign.id))
        await templates.check_for_launch(campaign)
        facts = await launch_facts(campaign)
        lifecycle.check_launch(
            t.action,
            LaunchFacts(
                recipients=facts.recipients,
                missing_variables=facts.missing_variables,
                missing_count=facts.missing_count,
                longest=facts.longest,
                scheduled_at=scheduled_at,
                now=now,
                local_times=local_times,
            ),
        )
    elif t.action is Action.RESCHEDULE:
        lifecycle.check_launch(
            t.action,
            LaunchFacts(recipients=campaign.total, scheduled_at=scheduled_at, now=now, local_times=local_times),
        )
    elif t.action is Action.RETRY_FAILED:
        lifecycle.check_retry_failed(await count_retryable(db.client(), campaign.id))


async def apply_system_action(
    campaign_id: int,
    action: Action,
    *,
    actor: str,
    reason: str | None = None,
    expect: CampaignStatus | None = None,
    guard: Callable[[Campaign], bool] | None = None,
    after: AfterTransition | None = None,
) -> Campaign | None:
    """A transition taken by the system (scheduler, worker, failure guard): the same
    table, the same conditional UPDATE and event. Returns None when the campaign is
    not (or no longer) in a status that allows `action` — a stale job does nothing."""

    async def plan(campaign: Campaign) -> tuple[Transition, dict[str, Any]] | None:
        if expect is not None and campaign.status is not expect:
            return None
        if guard is not None and not guard(campaign):
            return None  # e.g. a stale schedule token: the version check keeps it true
        if (campaign.status, action) not in lifecycle.TABLE:
            return None
        t = lifecycle.transition(campaign.status, action)
        return t, _status_fields(t, now_utc(), reason, campaign.scheduled_at)

    try:
        done = await _apply(lambda: Campaign.get_or_none(id=campaign_id), plan, actor, reason, after)
    except _Contended:
        return None
    return done[0] if done is not None else None
