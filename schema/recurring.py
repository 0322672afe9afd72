"""Recurring campaigns in GraphQL: `recurringSchedules`, `recurringSchedule`, the
`RecurringSchedule` node, and the mutations that create, pause, resume and end one.
Reading needs `read`; creating and resuming need `send` (they make messages go out, as
scheduleCampaign does), pausing and ending `write` (they only stop sending), as
domain/access.py says. The rules are services/recurring.py's and domain/recurrence.py's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry

import models
from domain.errors import DomainError, InvalidTransition
from domain.ids import expect_id, to_global_id
from domain.lifecycle import ScheduleAction, ScheduleStatus, schedule_allowed_actions
from domain.recurrence import MAX_NEXT_OCCURRENCES
from schema.context import Context
from schema.errors import UserError
from schema.types import Campaign, Node
from services import recurring as service
from services.auth import Principal

Info = strawberry.Info[Context, None]

RecurringScheduleStatus = strawberry.enum(
    ScheduleStatus,
    name="RecurringScheduleStatus",
    description="ACTIVE: occurrences are created at their times; PAUSED: none until resumed; ENDED: for good.",
)
RecurringScheduleAction = strawberry.enum(
    ScheduleAction, name="RecurringScheduleAction", description="What a user may do to a recurring schedule now."
)


@strawberry.type(
    description=(
        "A cron expression read in an IANA time zone on a model campaign (a DRAFT): each occurrence is a new "
        "campaign copied from the model (its content and recipients as they are then), named with its date, "
        "launched at once with its own lifecycle and report. A slot missed while the service was down runs once "
        "when it is back, not once per missed slot."
    )
)
class RecurringSchedule(Node):
    cron: str = strawberry.field(description="Five fields: minute hour day-of-month month day-of-week; one minute.")
    time_zone: str = strawberry.field(description="The IANA zone the cron expression is read in.")
    starts_at: datetime
    ends_at: datetime | None = strawberry.field(description="No occurrence after it; null: no end.")
    max_runs: int | None = strawberry.field(description="It ends after this many occurrences; null: no limit.")
    runs: int = strawberry.field(description="Occurrences created so far.")
    status: RecurringScheduleStatus  # type: ignore[valid-type]
    next_run_at: datetime | None = strawberry.field(description="The next occurrence, while ACTIVE.")
    last_run_at: datetime | None = strawberry.field(description="When the last occurrence was created.")
    last_error: str | None = strawberry.field(
        description="Why the last occurrence was not launched (it stays a DRAFT, the reason in its statusReason)."
    )
    created_at: datetime
    updated_at: datetime
    version: int
    _row: strawberry.Private[models.RecurringSchedule]

    @strawberry.field(description="The model campaign: its edits and recipients apply to the occurrences to come.")
    async def campaign(self) -> Campaign:
        return Campaign.of(await models.Campaign.get(id=self._row.campaign_id))

    @strawberry.field(description="What a user may do to the schedule now.")
    def allowed_actions(self) -> list[RecurringScheduleAction]:  # type: ignore[valid-type]
        return list(schedule_allowed_actions(self._row.status))

    @strawberry.field(
        description=(
            f"The times of the next occurrences (at most {MAX_NEXT_OCCURRENCES}), within endsAt and maxRuns; "
            "while PAUSED, those a resume now would run; none once ENDED."
        )
    )
    def next_occurrences(self, count: int | None = 5) -> list[datetime]:
        return service.next_occurrences(self._row, 5 if count is None else count)

    @strawberry.field(
        description=f"The campaigns it made, newest first (at most {service.MAX_OCCURRENCES_PAGE} per call)."
    )
    async def occurrences(self, first: int | None = 20) -> list[Campaign]:
        found = await service.occurrences(self._row.id, 20 if first is None else first)
        return [Campaign.of(c) for c in found]

    @classmethod
    def of(cls, s: models.RecurringSchedule) -> RecurringSchedule:
        return cls(
            id=strawberry.ID(to_global_id("RecurringSchedule", s.id)),
            cron=s.cron,
            time_zone=s.time_zone,
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            max_runs=s.max_runs,
            runs=s.runs,
            status=s.status,
            next_run_at=s.next_run_at,
            last_run_at=s.last_run_at,
            last_error=s.last_error,
            created_at=s.created_at,
            updated_at=s.updated_at,
            version=s.version,
            _row=s,
        )


@strawberry.input
class CreateRecurringScheduleInput:
    campaign_id: strawberry.ID = strawberry.field(description="The model: a DRAFT campaign of the workspace.")
    cron: str = strawberry.field(description="e.g. '0 9 * * 1' for Mondays at 09:00; at most one occurrence an hour.")
    time_zone: str = strawberry.field(description="An IANA zone, e.g. Europe/Paris.")
    starts_at: datetime | None = strawberry.field(default=None, description="Omitted: now.")
    ends_at: datetime | None = None
    max_runs: int | None = None


@strawberry.type(
    description="On INVALID_TRANSITION, recurringSchedule holds the schedule as it is now, so a client can re-render."
)
class RecurringSchedulePayload:
    recurring_schedule: RecurringSchedule | None
    user_errors: list[UserError]


_INPUT = {key: ["input", key] for key in ("campaignId", "cron", "timeZone", "startsAt", "endsAt", "maxRuns")}


async def _schedule_op(
    info: Info, gid: str, op: Callable[[Principal, int], Awaitable[models.RecurringSchedule]]
) -> RecurringSchedulePayload:
    pk = 0
    try:
        principal = info.context.require(info)
        pk = expect_id(gid, "RecurringSchedule")
        done = await op(principal, pk)
    except DomainError as error:
        current = None
        if isinstance(error, InvalidTransition):
            current = RecurringSchedule.of(await service.get_schedule(principal, pk))
        return RecurringSchedulePayload(recurring_schedule=current, user_errors=UserError.all(error))
    return RecurringSchedulePayload(recurring_schedule=RecurringSchedule.of(done), user_errors=[])


@strawberry.type
class RecurringQueries:
    @strawberry.field(
        description=f"The workspace's recurring schedules, newest first (at most {service.MAX_SCHEDULES_PAGE})."
    )
    async def recurring_schedules(
        self,
        info: Info,
        status: list[RecurringScheduleStatus] | None = None,  # type: ignore[valid-type]
        first: int | None = 50,
    ) -> list[RecurringSchedule]:
        principal = info.context.require(info)
        found = await service.list_schedules(principal.workspace_id, status, 50 if first is None else first)
        return [RecurringSchedule.of(s) for s in found]

    @strawberry.field
    async def recurring_schedule(self, info: Info, id: strawberry.ID) -> RecurringSchedule | None:
        return await schedule_node(info.context.require(info), id)


@strawberry.type
class RecurringMutations:
    @strawberry.mutation(description="A schedule on a DRAFT model campaign (send): ACTIVE from its first slot.")
    async def create_recurring_schedule(
        self, info: Info, input: CreateRecurringScheduleInput
    ) -> RecurringSchedulePayload:
        try:
            principal = info.context.require(info)
            created = await service.create_schedule(
                principal,
                expect_id(input.campaign_id, "Campaign", ("campaignId",)),
                cron=input.cron,
                time_zone=input.time_zone,
                starts_at=input.starts_at,
                ends_at=input.ends_at,
                max_runs=input.max_runs,
            )
        except DomainError as error:
            return RecurringSchedulePayload(recurring_schedule=None, user_errors=UserError.all(error, rename=_INPUT))
        return RecurringSchedulePayload(recurring_schedule=RecurringSchedule.of(created), user_errors=[])

    @strawberry.mutation(description="ACTIVE → PAUSED: no occurrence is created until resumed (write).")
    async def pause_recurring_schedule(self, info: Info, id: strawberry.ID) -> RecurringSchedulePayload:
        return await _schedule_op(info, id, service.pause_schedule)

    @strawberry.mutation(description="PAUSED → ACTIVE from the next slot after now; missed slots are not run (send).")
    async def resume_recurring_schedule(self, info: Info, id: strawberry.ID) -> RecurringSchedulePayload:
        return await _schedule_op(info, id, service.resume_schedule)

    @strawberry.mutation(description="ACTIVE | PAUSED → ENDED, for good; its occurrences stay (write).")
    async def end_recurring_schedule(self, info: Info, id: strawberry.ID) -> RecurringSchedulePayload:
        return await _schedule_op(info, id, service.end_schedule)


async def schedule_node(principal: Principal, gid: str) -> RecurringSchedule | None:
    """The caller's schedule of a global id (`node`, `recurringSchedule`), or None."""
    try:
        return RecurringSchedule.of(await service.get_schedule(principal, expect_id(gid, "RecurringSchedule")))
    except DomainError:
        return None


async def schedule_of_model(campaign_id: int) -> RecurringSchedule | None:
    """Campaign.recurringSchedule."""
    found = await service.schedule_of_model(campaign_id)
    return RecurringSchedule.of(found) if found is not None else None


async def schedule_of_occurrence(campaign_id: int) -> RecurringSchedule | None:
    """Campaign.occurrenceOf."""
    found = await service.schedule_of_occurrence(campaign_id)
    return RecurringSchedule.of(found) if found is not None else None
