"""Recurring schedules over the database: create, pause, resume, end, and `run_due`.

Every change of a schedule is one conditional `UPDATE … WHERE id = ? AND status = ? AND
version = ?` (as services/transitions.py does for campaigns), so two racing changes, or
two workers running one due schedule, cannot both win.

`run_due(now)` (called by the sweep, jobs/sweep.py) runs each ACTIVE schedule whose
`next_run_at` has come, by the business clock. In ONE transaction: the schedule moves to
its next slot after `now` (so slots missed while the service was down collapse into one
occurrence), counts the run, ends if maxRuns or endsAt say so, and the occurrence is
created from the model (services/campaigns.copy_campaign: content, delivery settings,
recipients minus opt-outs) with its `schedule_id` and `occurrence_at`, unique together:
an occurrence is never created twice. After the commit the occurrence is launched as a
user's sendCampaignNow would be, with the same guards; one that a guard refuses stays a
DRAFT with the reason in its `statusReason` and the schedule's `lastError`, and the
schedule goes on. An occurrence committed but never launched (the worker died in
between) is launched by the next run_due, unless a later slot is due by then (it is
replaced by that slot's occurrence: missed slots run once).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from domain import lifecycle, recurrence
from domain.errors import Conflict, DomainError, InvalidTransition, NotFound, ValidationFailed
from domain.ids import to_global_id
from domain.lifecycle import Action, CampaignStatus, ScheduleAction, ScheduleStatus
from domain.recurrence import Recurrence
from models import Campaign, RecurringSchedule
from runtime import clock
from services import db
from services.auth import Principal
from services.campaigns import copy_campaign, get_campaign, now_utc
from services.transitions import AfterTransition, apply_action

log = logging.getLogger("campaigns.recurring")

#: who creates and launches occurrences, in their history
ACTOR = "scheduler"
#: schedules run per call of run_due (the sweep comes back 5 s later for the rest)
RUN_BATCH = 100
#: an occurrence created this long ago and still an unlaunched DRAFT lost its launch
LAUNCH_GRACE = timedelta(seconds=30)
#: the most occurrences `occurrences(first)` returns at once
MAX_OCCURRENCES_PAGE = 100
#: the most schedules `recurringSchedules(first)` returns at once
MAX_SCHEDULES_PAGE = 100
_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence run_due created: its campaign, and why it was not launched, if not."""

    schedule_id: int
    campaign_id: int
    occurrence_at: datetime
    error: str | None = None


def recurrence_of(s: RecurringSchedule) -> Recurrence:
    return Recurrence(s.cron, s.time_zone, s.starts_at, s.ends_at, s.max_runs)


def not_found(pk: int, field: tuple[str, ...] = ("id",)) -> NotFound:
    return NotFound(f"No recurring schedule with id {to_global_id('RecurringSchedule', pk)!r}.", field)


async def get_schedule(principal: Principal, pk: int, field: tuple[str, ...] = ("id",)) -> RecurringSchedule:
    """The caller's schedule; another workspace's is NOT_FOUND exactly like a missing one."""
    found = await RecurringSchedule.get_or_none(id=pk, workspace_id=principal.workspace_id)
    if found is None:
        raise not_found(pk, field)
    return found


async def create_schedule(
    principal: Principal,
    campaign_id: int,
    *,
    cron: str,
    time_zone: str,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    max_runs: int | None = None,
) -> RecurringSchedule:
    """A new ACTIVE schedule on the DRAFT campaign `campaign_id`, its model. Raises
    ValidationFailed naming each bad field (cron, timeZone, endsAt, maxRuns; campaignId
    for a model that is not a DRAFT or already has a live schedule), nothing written."""
    now = clock.now()
    rec, first = recurrence.validate(cron, time_zone, starts_at, ends_at, max_runs, now)
    model = await get_campaign(principal, campaign_id, ("campaignId",))
    if model.status is not CampaignStatus.DRAFT:
        raise ValidationFailed(
            f"The model of a recurring schedule is a DRAFT campaign (this one is {model.status}); "
            "duplicate it and put the schedule on the copy.",
            ("campaignId",),
        )
    async with db.in_transaction() as conn:
        # becoming a model is a change of the campaign: a SEND_NOW or SCHEDULE that read it
        # before loses its race and is decided again, under the model's guard
        won = (
            await Campaign.filter(id=model.id, status=CampaignStatus.DRAFT, version=model.version)
            .using_db(conn)
            .update(version=F("version") + 1, updated_at=now_utc())
        )
        if not won:
            raise Conflict("The campaign changed while this request ran; try again.", ("campaignId",))
        live = (
            await RecurringSchedule.filter(campaign_id=model.id, status__in=lifecycle.LIVE_SCHEDULE)
            .using_db(conn)
            .exists()
        )
        if live:
            raise ValidationFailed(
                "This campaign is already the model of a live recurring schedule; end that one first.",
                ("campaignId",),
            )
        try:
            return await RecurringSchedule.create(
                using_db=conn,
                workspace_id=principal.workspace_id,
                campaign_id=model.id,
                cron=rec.cron,
                time_zone=rec.time_zone,
                starts_at=rec.starts_at,
                ends_at=rec.ends_at,
                max_runs=rec.max_runs,
                next_run_at=first,
            )
        except IntegrityError:  # the partial unique index: a live schedule created meanwhile
            raise Conflict("The campaign changed while this request ran; try again.", ("campaignId",)) from None


async def pause_schedule(principal: Principal, pk: int) -> RecurringSchedule:
    """ACTIVE -> PAUSED: no occurrence is created until RESUME."""
    return await _change(principal, pk, ScheduleAction.PAUSE)


async def resume_schedule(principal: Principal, pk: int) -> RecurringSchedule:
    """PAUSED -> ACTIVE from the next slot after now (slots passed while paused are not
    run); refused when no slot is left before endsAt."""
    return await _change(principal, pk, ScheduleAction.RESUME)


async def end_schedule(principal: Principal, pk: int) -> RecurringSchedule:
    """ACTIVE | PAUSED -> ENDED, for good; the occurrences made stay as they are."""
    return await _change(principal, pk, ScheduleAction.END)


async def _change(principal: Principal, pk: int, action: ScheduleAction) -> RecurringSchedule:
    for _ in range(_ATTEMPTS):
        s = await get_schedule(principal, pk)
        target = lifecycle.schedule_transition(s.status, action)
        fields: dict[str, Any] = {"status": target, "updated_at": now_utc(), "next_run_at": None}
        if target is ScheduleStatus.ACTIVE:
            following = recurrence.next_after(recurrence_of(s), clock.now())
            if following is None:
                raise ValidationFailed(
                    f"The schedule has no occurrence left before its endsAt ({s.ends_at}); end it instead.",
                    ("id",),
                )
            fields["next_run_at"] = following
        won = await RecurringSchedule.filter(id=pk, status=s.status, version=s.version).update(
            version=F("version") + 1, **fields
        )
        if won:
            return await get_schedule(principal, pk)
    raise Conflict("The schedule kept changing while this request ran; try again.", ("id",))


# ------------------------------------------------------------------------ running


async def run_due(
    now: datetime | None = None, *, after: AfterTransition | None = None, limit: int = RUN_BATCH
) -> list[Occurrence]:
    """Create and launch the occurrence of every ACTIVE schedule due by `now` (the
    business clock by default), and launch what an earlier run committed but never
    launched. Returns the occurrences created by this call. `after` is the lifecycle
    hook of the launches (jobs/effects.py: enqueue the run)."""
    now = now or clock.now()
    await _launch_lost(now, after)
    made: list[Occurrence] = []
    due = (
        await RecurringSchedule.filter(status=ScheduleStatus.ACTIVE, next_run_at__lte=now)
        .order_by("next_run_at", "id")
        .limit(limit)
    )
    for s in due:
        created = await _occur(s, now)
        if created is not None:
            made.append(await _launch(s.id, created.id, after))
    return made


async def _occur(s: RecurringSchedule, now: datetime) -> Campaign | None:
    """The schedule's run and its occurrence, in one transaction; None when another run
    (a second worker, a retried job) took this slot first."""
    assert s.next_run_at is not None  # ACTIVE schedules have their next slot
    plan = recurrence.plan_run(recurrence_of(s), s.runs, s.next_run_at, now)
    gid = to_global_id("RecurringSchedule", s.id)
    note = f"occurrence {plan.occurrence_at.isoformat()} of recurring schedule {gid}"
    if plan.skipped is None:
        note += f"; the slots missed since {s.next_run_at.isoformat()} were not run"
    elif plan.skipped:
        note += f"; {plan.skipped} earlier slot(s) missed while the service was down were not run"
    try:
        async with db.in_transaction() as conn:
            won = (
                await RecurringSchedule.filter(id=s.id, status=ScheduleStatus.ACTIVE, version=s.version)
                .using_db(conn)
                .update(
                    runs=F("runs") + 1,
                    status=plan.status,
                    next_run_at=plan.next_run_at,
                    last_run_at=now,
                    last_error=None,
                    version=F("version") + 1,
                    updated_at=now_utc(),
                )
            )
            if not won:
                return None
            model = await Campaign.filter(id=s.campaign_id).using_db(conn).get()
            name = recurrence.occurrence_name(model.name, plan.occurrence_at, s.time_zone)
            made = await copy_campaign(conn, model, name, ACTOR, note)
            await Campaign.filter(id=made.id).using_db(conn).update(schedule_id=s.id, occurrence_at=plan.occurrence_at)
            await RecurringSchedule.filter(id=s.id).using_db(conn).update(last_campaign_id=made.id)
    except IntegrityError:
        # (schedule_id, occurrence_at) exists: the slot's occurrence was made already
        log.warning("recurring schedule %s: the occurrence of %s exists already", s.id, plan.occurrence_at)
        return None
    return made


async def _launch(schedule_id: int, campaign_id: int, after: AfterTransition | None) -> Occurrence:
    """SEND_NOW, as sendCampaignNow applies it (its guards: recipients, template...);
    a refusal is recorded on the occurrence and its schedule."""
    campaign = await Campaign.get(id=campaign_id)
    at = campaign.occurrence_at
    assert at is not None  # an occurrence
    principal = Principal(workspace_id=campaign.workspace_id, actor=ACTOR)
    try:
        await apply_action(principal, campaign_id, Action.SEND_NOW, after=after)
    except InvalidTransition:
        return Occurrence(schedule_id, campaign_id, at)  # launched meanwhile (by another run_due)
    except DomainError as error:
        reason = f"Not launched: {error.message}"
        await Campaign.filter(id=campaign_id, status=CampaignStatus.DRAFT).update(status_reason=reason)
        await RecurringSchedule.filter(id=schedule_id, last_campaign_id=campaign_id).update(last_error=reason)
        log.info("recurring schedule %s: occurrence %s not launched (%s)", schedule_id, campaign_id, error.message)
        return Occurrence(schedule_id, campaign_id, at, reason)
    return Occurrence(schedule_id, campaign_id, at)


async def _launch_lost(now: datetime, after: AfterTransition | None) -> None:
    """Occurrences committed but never launched (the worker died in between): a
    schedule's last one, still a DRAFT with no reason recorded, created a while ago (a
    launch in progress is younger). Launched, unless a later slot of its schedule is due
    by now: then the service was down past it, and that slot's occurrence replaces it
    (slots missed while down run once, not once each)."""
    lost = await RecurringSchedule.filter(
        last_error__isnull=True,
        last_campaign__status=CampaignStatus.DRAFT,
        last_campaign__status_reason__isnull=True,
        last_campaign__created_at__lt=now_utc() - LAUNCH_GRACE,
    )
    for s in lost:
        assert s.last_campaign_id is not None  # the filter joined it
        if s.status is ScheduleStatus.ACTIVE and s.next_run_at is not None and s.next_run_at <= now:
            reason = "Not launched: the service was down until a later slot, whose occurrence replaces this one."
            await Campaign.filter(id=s.last_campaign_id, status=CampaignStatus.DRAFT).update(status_reason=reason)
            continue
        await _launch(s.id, s.last_campaign_id, after)


# ------------------------------------------------------------------------ reads


async def list_schedules(
    workspace_id: int, statuses: list[ScheduleStatus] | None = None, first: int = 50
) -> list[RecurringSchedule]:
    """The workspace's schedules, newest first, at most MAX_SCHEDULES_PAGE."""
    query = RecurringSchedule.filter(workspace_id=workspace_id)
    if statuses:
        query = query.filter(status__in=statuses)
    return await query.order_by("-id").limit(max(0, min(first, MAX_SCHEDULES_PAGE)))


async def schedule_of_model(campaign_id: int) -> RecurringSchedule | None:
    """The schedule `campaign_id` is the model of: its live one, else its latest."""
    return await RecurringSchedule.filter(campaign_id=campaign_id).order_by("-id").first()


async def schedule_of_occurrence(campaign_id: int) -> RecurringSchedule | None:
    """The schedule that made the campaign `campaign_id`, if one did."""
    return await RecurringSchedule.filter(occurrences__id=campaign_id).first()


async def occurrences(schedule_id: int, first: int = 20) -> list[Campaign]:
    """The campaigns the schedule made, newest first, at most MAX_OCCURRENCES_PAGE."""
    size = max(0, min(first, MAX_OCCURRENCES_PAGE))
    return await Campaign.filter(schedule_id=schedule_id).order_by("-id").limit(size)


def next_occurrences(s: RecurringSchedule, count: int) -> list[datetime]:
    """The slots the schedule would run next: from its next slot while ACTIVE, from now
    while PAUSED (as a resume now would), none once ENDED; within endsAt and maxRuns."""
    if s.status is ScheduleStatus.ENDED:
        return []
    left = s.max_runs - s.runs if s.max_runs is not None else None
    if s.status is ScheduleStatus.ACTIVE and s.next_run_at is not None:
        after = s.next_run_at - timedelta(microseconds=1)
    else:
        after = clock.now()
    return recurrence.upcoming(recurrence_of(s), after, count, left)
