"""services/recurring.py on the real database, with the business clock moved: run_due
creates one occurrence per due slot (one for slots missed while stopped), ends the
schedule at maxRuns or endsAt, honours pause/resume/end, never creates a slot's
occurrence twice, and each occurrence is a campaign of its own (recipients copied,
counters its own) launched with sendCampaignNow's guards."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pytest
from tortoise.exceptions import IntegrityError

from domain.errors import InvalidTransition, NotFound, ValidationFailed
from domain.ids import expect_id
from domain.lifecycle import Action, CampaignStatus, ScheduleStatus
from models import Campaign, CampaignEvent, Message, RecurringSchedule
from services import campaigns, recurring
from services.optouts import add_opt_outs
from services.recipients import add_recipients
from services.transitions import apply_action
from tests.conftest import Api, phone
from tests.services.test_receipts import assert_consistent

S, SS = CampaignStatus, ScheduleStatus
#: Monday 7 December 2026, 08:58 in Paris (UTC+1): two minutes before a 09:00 slot
T0 = datetime(2026, 12, 7, 7, 58, tzinfo=UTC)
SLOT = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)


pytestmark = pytest.mark.usefixtures("quiet_schedules")


@pytest.fixture
def clock(business_clock: ModuleType) -> ModuleType:
    business_clock.travel_to(T0)
    return business_clock


async def model(api: Api, n: int = 3, name: str = "Weekly news") -> int:
    return expect_id((await api.ready_campaign(n, name=name))["id"], "Campaign")


async def daily(api: Api, pk: int, **given: object) -> RecurringSchedule:
    options: dict[str, object] = {"cron": "0 9 * * *", "time_zone": "Europe/Paris"} | given
    return await recurring.create_schedule(api.principal, pk, **options)  # type: ignore[arg-type]


async def made(schedule_id: int) -> list[Campaign]:
    return await Campaign.filter(schedule_id=schedule_id).order_by("id")


async def test_three_occurrences_as_the_clock_moves(api: Api, clock: ModuleType) -> None:
    pk = await model(api)
    s = await daily(api, pk)
    assert (s.status, s.next_run_at, s.runs) == (SS.ACTIVE, SLOT, 0)
    assert await recurring.run_due() == []  # 08:58: not yet
    for day in range(3):
        clock.travel_to(SLOT + day * DAY + timedelta(seconds=3))
        created = await recurring.run_due()
        assert [o.occurrence_at for o in created] == [SLOT + day * DAY] and created[0].error is None
        assert await recurring.run_due() == []  # the slot is done
    s = await RecurringSchedule.get(id=s.id)
    assert (s.status, s.runs, s.next_run_at, s.last_error) == (SS.ACTIVE, 3, SLOT + 3 * DAY, None)
    occurrences = await made(s.id)
    assert [c.name for c in occurrences] == [f"Weekly news — 2026-12-{7 + d:02d} 09:00 Europe/Paris" for d in range(3)]
    assert s.last_campaign_id == occurrences[-1].id
    for c in occurrences:
        # launched as sendCampaignNow launches: QUEUED, by the scheduler, with its own numbers
        assert (c.status, c.total, c.pending, c.workspace_id) == (S.QUEUED, 3, 3, api.principal.workspace_id)
        await assert_consistent(c.id)
        events = await CampaignEvent.filter(campaign_id=c.id).order_by("id")
        assert [(e.action, e.actor) for e in events] == [("CREATE", "scheduler"), ("SEND_NOW", "scheduler")]
        assert events[0].reason is not None and "recurring schedule" in events[0].reason
    assert (await Campaign.get(id=pk)).status is S.DRAFT  # the model is never sent itself


async def test_slots_missed_while_stopped_run_once_and_the_next_is_after_now(api: Api, clock: ModuleType) -> None:
    s = await daily(api, await model(api))
    back = SLOT + 2 * DAY + timedelta(hours=3)  # stopped over three slots
    clock.travel_to(back)
    created = await recurring.run_due()
    assert [o.occurrence_at for o in created] == [SLOT + 2 * DAY]  # ONE, for the latest slot
    s = await RecurringSchedule.get(id=s.id)
    assert s.runs == 1 and s.next_run_at == SLOT + 3 * DAY and s.next_run_at > back
    assert await recurring.run_due() == []
    created_event = await CampaignEvent.get(campaign_id=created[0].campaign_id, action="CREATE")
    assert created_event.reason is not None and "2 earlier slot(s) missed" in created_event.reason


async def test_max_runs_ends_the_schedule(api: Api, clock: ModuleType) -> None:
    s = await daily(api, await model(api), max_runs=2)
    for day in range(4):
        clock.travel_to(SLOT + day * DAY + timedelta(seconds=1))
        await recurring.run_due()
    s = await RecurringSchedule.get(id=s.id)
    assert (s.status, s.runs, s.next_run_at) == (SS.ENDED, 2, None)
    assert len(await made(s.id)) == 2


async def test_ends_at_ends_the_schedule_after_its_last_slot(api: Api, clock: ModuleType) -> None:
    s = await daily(api, await model(api), ends_at=SLOT + DAY + timedelta(hours=5))
    clock.travel_to(SLOT + timedelta(seconds=1))
    await recurring.run_due()
    assert (await RecurringSchedule.get(id=s.id)).status is SS.ACTIVE
    clock.travel_to(SLOT + DAY + timedelta(seconds=1))
    await recurring.run_due()  # the last slot before endsAt
    s = await RecurringSchedule.get(id=s.id)
    assert (s.status, s.runs, s.next_run_at) == (SS.ENDED, 2, None)
    clock.travel_to(SLOT + 5 * DAY)
    assert await recurring.run_due() == []
    assert len(await made(s.id)) == 2


async def test_pause_resume_and_end(api: Api, clock: ModuleType) -> None:
    s = await daily(api, await model(api))
    paused = await recurring.pause_schedule(api.principal, s.id)
    assert (paused.status, paused.next_run_at, paused.version) == (SS.PAUSED, None, s.version + 1)
    clock.travel_to(SLOT + 2 * DAY + timedelta(hours=1))
    assert await recurring.run_due() == []  # paused: nothing, however many slots pass
    with pytest.raises(InvalidTransition) as refused:
        await recurring.pause_schedule(api.principal, s.id)
    assert refused.value.allowed == ("RESUME", "END") and "recurring schedule that is PAUSED" in refused.value.message
    resumed = await recurring.resume_schedule(api.principal, s.id)
    # from the next slot after the resume: the slots passed while paused are not run
    assert (resumed.status, resumed.next_run_at) == (SS.ACTIVE, SLOT + 3 * DAY)
    assert await recurring.run_due() == []
    ended = await recurring.end_schedule(api.principal, s.id)
    assert (ended.status, ended.next_run_at) == (SS.ENDED, None)
    for change in (recurring.pause_schedule, recurring.resume_schedule, recurring.end_schedule):
        with pytest.raises(InvalidTransition):
            await change(api.principal, s.id)
    clock.travel_to(SLOT + 9 * DAY)
    assert await recurring.run_due() == [] and await made(s.id) == []


async def test_a_resume_with_no_slot_left_is_refused(api: Api, clock: ModuleType) -> None:
    s = await daily(api, await model(api), ends_at=SLOT + DAY + timedelta(hours=1))
    await recurring.pause_schedule(api.principal, s.id)
    clock.travel_to(SLOT + 3 * DAY)
    with pytest.raises(ValidationFailed) as refused:
        await recurring.resume_schedule(api.principal, s.id)
    assert refused.value.field == ("id",) and "no occurrence left" in refused.value.message
    assert (await RecurringSchedule.get(id=s.id)).status is SS.PAUSED  # nothing written


async def test_another_workspaces_schedule_is_not_found(api: Api, other_api: Api, clock: ModuleType) -> None:
    s = await daily(api, await model(api))
    with pytest.raises(NotFound):
        await recurring.end_schedule(other_api.principal, s.id)
    with pytest.raises(NotFound) as refused:
        await recurring.create_schedule(other_api.principal, s.campaign_id, cron="0 9 * * *", time_zone="UTC")
    assert refused.value.field == ("campaignId",)


async def test_two_run_due_at_once_create_one_occurrence(api: Api, clock: ModuleType) -> None:
    s = await daily(api, await model(api))
    clock.travel_to(SLOT + timedelta(seconds=1))
    first, second = await asyncio.gather(recurring.run_due(), recurring.run_due())
    assert len(first) + len(second) == 1
    assert len(await made(s.id)) == 1
    assert (await RecurringSchedule.get(id=s.id)).runs == 1


async def test_a_slot_whose_occurrence_exists_is_never_made_again(api: Api, clock: ModuleType) -> None:
    """The version check stops a second run of one slot; the unique (schedule_id,
    occurrence_at) stops one that got past it (the schedule's row as it was before)."""
    s = await daily(api, await model(api))
    clock.travel_to(SLOT + timedelta(seconds=1))
    assert len(await recurring.run_due()) == 1
    await RecurringSchedule.filter(id=s.id).update(runs=0, next_run_at=SLOT, status=SS.ACTIVE)
    assert await recurring.run_due() == []  # the occurrence of 09:00 exists: rolled back
    after = await RecurringSchedule.get(id=s.id)
    assert (after.runs, after.next_run_at) == (0, SLOT)  # the run's transaction left nothing
    assert len(await made(s.id)) == 1
    with pytest.raises(IntegrityError):
        await Campaign.create(workspace_id=s.workspace_id, name="again", body="x", schedule_id=s.id, occurrence_at=SLOT)


async def test_occurrences_copy_the_models_recipients_as_they_are_then(api: Api, clock: ModuleType) -> None:
    pk = await model(api, n=3)
    await daily(api, pk)
    await add_opt_outs(api.principal, [phone(0)])  # opted out since it was added
    clock.travel_to(SLOT + timedelta(seconds=1))
    [one] = await recurring.run_due()
    first = await Campaign.get(id=one.campaign_id)
    assert first.total == 2
    assert phone(0) not in await Message.filter(campaign_id=first.id).values_list("phone", flat=True)
    # the model's edits and recipients apply to the occurrences to come
    await add_recipients(api.principal, pk, [(phone(7), {"name": "Seven"})])
    await campaigns.update_campaign(api.principal, pk, {"body": "Hello {{name}}, this week's news."})
    clock.travel_to(SLOT + DAY + timedelta(seconds=1))
    [two] = await recurring.run_due()
    second = await Campaign.get(id=two.campaign_id)
    assert (second.total, second.body) == (3, "Hello {{name}}, this week's news.")
    # their own counters: what one sends moves only its own
    await Message.filter(campaign_id=first.id).update(status="CANCELLED")
    await Campaign.filter(id=first.id).update(pending=0, cancelled=2)
    await assert_consistent(first.id)
    second = await Campaign.get(id=second.id)
    assert (second.pending, second.cancelled) == (3, 0)
    await assert_consistent(second.id)


async def test_an_occurrence_the_launch_guard_refuses_stays_a_draft_with_the_reason(
    api: Api, clock: ModuleType
) -> None:
    pk = expect_id((await api.create_campaign(name="No one yet"))["id"], "Campaign")
    s = await daily(api, pk)
    clock.travel_to(SLOT + timedelta(seconds=1))
    [refused] = await recurring.run_due()
    assert refused.error is not None and "no recipients" in refused.error
    c = await Campaign.get(id=refused.campaign_id)
    assert (c.status, c.status_reason) == (S.DRAFT, refused.error)
    s = await RecurringSchedule.get(id=s.id)
    assert (s.status, s.last_error, s.next_run_at) == (SS.ACTIVE, refused.error, SLOT + DAY)  # it goes on
    assert await recurring.run_due() == []  # not launched again and again
    await add_recipients(api.principal, pk, [(phone(1), {"name": "One"})])
    clock.travel_to(SLOT + DAY + timedelta(seconds=1))
    [launched] = await recurring.run_due()
    assert launched.error is None and (await Campaign.get(id=launched.campaign_id)).status is S.QUEUED
    assert (await RecurringSchedule.get(id=s.id)).last_error is None


async def test_an_occurrence_committed_but_never_launched_is_launched_by_the_next_run(
    api: Api, clock: ModuleType
) -> None:
    s = await daily(api, await model(api))
    clock.travel_to(SLOT + timedelta(seconds=1))
    occurrence = await recurring._occur(await RecurringSchedule.get(id=s.id), SLOT + timedelta(seconds=1))
    assert occurrence is not None  # ... and the worker died before launching it
    assert await recurring.run_due() == []
    assert (await Campaign.get(id=occurrence.id)).status is S.DRAFT  # a launch may be under way: not yet
    await Campaign.filter(id=occurrence.id).update(created_at=datetime.now(UTC) - timedelta(minutes=1))
    await recurring.run_due()
    assert (await Campaign.get(id=occurrence.id)).status is S.QUEUED
    # lost again, and the service stays down past the next slot: the later slot's
    # occurrence replaces it (one send for the slots missed while down, not two)
    clock.travel_to(SLOT + DAY + timedelta(seconds=1))
    lost = await recurring._occur(await RecurringSchedule.get(id=s.id), SLOT + DAY + timedelta(seconds=1))
    assert lost is not None
    await Campaign.filter(id=lost.id).update(created_at=datetime.now(UTC) - timedelta(minutes=1))
    clock.travel_to(SLOT + 2 * DAY + timedelta(hours=1))
    [latest] = await recurring.run_due()
    lost_now = await Campaign.get(id=lost.id)
    assert lost_now.status is S.DRAFT and lost_now.status_reason is not None and "replaces" in lost_now.status_reason
    assert latest.occurrence_at == SLOT + 2 * DAY and (await Campaign.get(id=latest.campaign_id)).status is S.QUEUED


async def test_the_model_of_a_live_schedule_is_not_sent_or_deleted_until_it_ends(api: Api, clock: ModuleType) -> None:
    pk = await model(api)
    s = await daily(api, pk)
    for action in (Action.SEND_NOW, Action.SCHEDULE):
        with pytest.raises(ValidationFailed) as refused:
            await apply_action(api.principal, pk, action, scheduled_at=T0 + DAY)
        assert "model of a recurring schedule" in refused.value.message
    with pytest.raises(ValidationFailed):
        await campaigns.delete_campaign(api.principal, pk)
    copy = await campaigns.duplicate_campaign(api.principal, pk, None)  # a copy is no model
    assert (await apply_action(api.principal, copy.id, Action.SEND_NOW)).campaign.status is S.QUEUED
    clock.travel_to(SLOT + timedelta(seconds=1))
    [one] = await recurring.run_due()
    await recurring.end_schedule(api.principal, s.id)
    await campaigns.delete_campaign(api.principal, pk)  # an ENDED schedule goes with its model
    assert not await RecurringSchedule.filter(id=s.id).exists()
    occurrence = await Campaign.get(id=one.campaign_id)  # its occurrences stay, on their own
    assert (occurrence.status, occurrence.schedule_id) == (S.QUEUED, None)


async def test_a_schedule_needs_a_draft_model_without_a_live_schedule(api: Api, clock: ModuleType) -> None:
    pk = await model(api)
    await daily(api, pk)
    with pytest.raises(ValidationFailed) as twice:
        await daily(api, pk)
    assert twice.value.field == ("campaignId",) and "already the model" in twice.value.message
    sent = await model(api)
    await apply_action(api.principal, sent, Action.SEND_NOW)
    with pytest.raises(ValidationFailed) as not_draft:
        await daily(api, sent)
    assert not_draft.value.field == ("campaignId",) and "DRAFT" in not_draft.value.message


async def test_bad_input_writes_nothing(api: Api, clock: ModuleType) -> None:
    pk = await model(api)
    version = (await Campaign.get(id=pk)).version
    bad: list[dict[str, object]] = [
        {"cron": "0 9 * *"},
        {"time_zone": "Europe/Pariss"},
        {"max_runs": 0},
        {"starts_at": T0 + 2 * DAY, "ends_at": T0 + DAY},
        {"cron": "0 9 * * 1", "ends_at": T0 + 3 * DAY + timedelta(hours=1)},  # Tuesday to Thursday: no Monday
        {"starts_at": T0 + DAY, "cron": "0 9 30 2 *"},
    ]
    clock.travel_to(T0 + DAY)  # a Tuesday
    for given in bad:
        with pytest.raises(ValidationFailed):
            await daily(api, pk, **given)
    assert not await RecurringSchedule.filter(campaign_id=pk).exists()
    assert (await Campaign.get(id=pk)).version == version


async def test_next_occurrences_follow_the_status(api: Api, clock: ModuleType) -> None:
    s = await daily(api, await model(api), max_runs=4)
    assert recurring.next_occurrences(s, 10) == [SLOT + d * DAY for d in range(4)]
    clock.travel_to(SLOT + timedelta(seconds=1))
    await recurring.run_due()
    s = await RecurringSchedule.get(id=s.id)
    assert recurring.next_occurrences(s, 2) == [SLOT + DAY, SLOT + 2 * DAY]
    assert len(recurring.next_occurrences(s, 10)) == 3  # maxRuns leaves three
    paused = await recurring.pause_schedule(api.principal, s.id)
    clock.travel_to(SLOT + 2 * DAY + timedelta(hours=1))
    assert recurring.next_occurrences(paused, 1) == [SLOT + 3 * DAY]  # as a resume now would
    assert recurring.next_occurrences(await recurring.end_schedule(api.principal, s.id), 5) == []
