"""The lifecycle table itself, against docs/DESIGN.md's table."""

from __future__ import annotations

import pytest

from domain import lifecycle
from domain.errors import InvalidTransition
from domain.lifecycle import Action, CampaignStatus

S, A = CampaignStatus, Action

#: docs/DESIGN.md, "Lifecycle": status -> the actions it allows, verbatim.
DESIGN = {
    S.DRAFT: {A.EDIT, A.ADD_RECIPIENTS, A.REMOVE_RECIPIENTS, A.DELETE, A.SCHEDULE, A.SEND_NOW, A.DUPLICATE},
    S.SCHEDULED: {A.RESCHEDULE, A.UNSCHEDULE, A.CANCEL, A.DUPLICATE},
    S.QUEUED: {A.PAUSE, A.CANCEL, A.DUPLICATE},
    S.PROCESSING: {A.PAUSE, A.CANCEL, A.DUPLICATE},
    S.PAUSED: {A.RESUME, A.CANCEL, A.DUPLICATE},
    S.COMPLETED: {A.RETRY_FAILED, A.DUPLICATE},
    S.CANCELLED: {A.DUPLICATE},
    S.FAILED: {A.RETRY, A.DUPLICATE},
}
TARGETS = {
    A.SCHEDULE: S.SCHEDULED,
    A.SEND_NOW: S.QUEUED,
    A.UNSCHEDULE: S.DRAFT,
    A.PAUSE: S.PAUSED,
    A.RESUME: S.QUEUED,
    A.CANCEL: S.CANCELLED,
    A.RETRY_FAILED: S.QUEUED,
    A.RETRY: S.QUEUED,
}


@pytest.mark.parametrize("status", list(CampaignStatus))
@pytest.mark.parametrize("action", lifecycle.USER_ACTIONS)
def test_every_user_pair_matches_the_design(status: CampaignStatus, action: Action) -> None:
    allowed = action in DESIGN[status]
    assert ((status, action) in lifecycle.TABLE) == allowed
    if not allowed:
        with pytest.raises(InvalidTransition) as refused:
            lifecycle.transition(status, action)
        assert refused.value.status == status.value
        assert set(refused.value.allowed) == {a.value for a in DESIGN[status]}
        assert status.value in refused.value.message
        return
    t = lifecycle.transition(status, action)
    if action is A.DELETE:
        assert t.target is None
    else:
        assert t.target == TARGETS.get(action, status)


def test_allowed_actions_follow_the_contract_order() -> None:
    for status, actions in DESIGN.items():
        listed = lifecycle.allowed_actions(status)
        assert set(listed) == actions
        assert listed == [a for a in lifecycle.USER_ACTIONS if a in actions]


@pytest.mark.parametrize(
    ("status", "action", "target"),
    [
        (S.SCHEDULED, A.START, S.QUEUED),
        (S.QUEUED, A.CLAIM, S.PROCESSING),
        (S.PROCESSING, A.COMPLETE, S.COMPLETED),
        (S.PROCESSING, A.AUTO_PAUSE, S.PAUSED),
        (S.QUEUED, A.AUTO_PAUSE, S.PAUSED),  # its template was paused before it started
        (S.QUEUED, A.FAIL, S.FAILED),
        (S.PROCESSING, A.FAIL, S.FAILED),
    ],
)
def test_system_transitions(status: CampaignStatus, action: Action, target: CampaignStatus) -> None:
    assert lifecycle.transition(status, action).target is target


def test_terminal_statuses_only_duplicate_or_retry() -> None:
    for status in lifecycle.TERMINAL:
        assert not [a for (s, a), t in lifecycle.TABLE.items() if s is status and t not in (status, S.QUEUED)]


def test_launch_is_refused_for_a_message_longer_than_whatsapp_takes_naming_the_recipient() -> None:
    from domain.campaign_input import MAX_BODY
    from domain.errors import ValidationFailed
    from domain.lifecycle import LaunchFacts, check_launch

    check_launch(Action.SEND_NOW, LaunchFacts(recipients=1, longest=("+14155550100", MAX_BODY)))
    with pytest.raises(ValidationFailed) as refused:
        check_launch(Action.SEND_NOW, LaunchFacts(recipients=1, longest=("+14155550100", MAX_BODY + 1)))
    assert "+14155550100 would be 4,097 characters" in refused.value.message


# ------------------------------------------------- recurring schedules (SCHEDULE_TABLE)

SS, SA = lifecycle.ScheduleStatus, lifecycle.ScheduleAction

#: docs/DESIGN.md, "Recurring campaigns": a schedule's status -> its actions and targets
SCHEDULE_DESIGN = {
    SS.ACTIVE: {SA.PAUSE: SS.PAUSED, SA.END: SS.ENDED},
    SS.PAUSED: {SA.RESUME: SS.ACTIVE, SA.END: SS.ENDED},
    SS.ENDED: {},
}


@pytest.mark.parametrize("status", list(lifecycle.ScheduleStatus))
@pytest.mark.parametrize("action", list(lifecycle.ScheduleAction))
def test_every_schedule_pair_matches_the_design(
    status: lifecycle.ScheduleStatus, action: lifecycle.ScheduleAction
) -> None:
    expected = SCHEDULE_DESIGN[status].get(action)
    assert lifecycle.SCHEDULE_TABLE.get((status, action)) is expected
    if expected is not None:
        assert lifecycle.schedule_transition(status, action) is expected
        return
    with pytest.raises(InvalidTransition) as refused:
        lifecycle.schedule_transition(status, action)
    assert f"{action} a recurring schedule that is {status}" in refused.value.message
    assert set(refused.value.allowed) == {a.value for a in SCHEDULE_DESIGN[status]}


def test_schedule_allowed_actions_follow_the_contract_order() -> None:
    assert lifecycle.schedule_allowed_actions(SS.ACTIVE) == [SA.PAUSE, SA.END]
    assert lifecycle.schedule_allowed_actions(SS.PAUSED) == [SA.RESUME, SA.END]
    assert lifecycle.schedule_allowed_actions(SS.ENDED) == []


@pytest.mark.parametrize("schedule", [SS.ACTIVE, SS.PAUSED])
@pytest.mark.parametrize("action", [A.SEND_NOW, A.SCHEDULE, A.DELETE])
def test_a_live_schedules_model_is_neither_sent_nor_deleted(schedule: lifecycle.ScheduleStatus, action: Action) -> None:
    from domain.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        lifecycle.check_model_action(action, schedule)
    assert refused.value.field == ("id",) and "model of a recurring schedule" in refused.value.message


@pytest.mark.parametrize("action", [A.EDIT, A.ADD_RECIPIENTS, A.REMOVE_RECIPIENTS, A.DUPLICATE])
def test_a_models_edits_and_recipients_are_allowed(action: Action) -> None:
    lifecycle.check_model_action(action, SS.ACTIVE)


@pytest.mark.parametrize("schedule", [SS.ENDED, None])
def test_a_campaign_of_an_ended_schedule_or_none_is_not_guarded(schedule: lifecycle.ScheduleStatus | None) -> None:
    for action in (A.SEND_NOW, A.SCHEDULE, A.DELETE):
        lifecycle.check_model_action(action, schedule)
