"""The campaign lifecycle: ONE table of (status, action) -> status, plus guards.

Every mutation, every job, `Campaign.allowedActions` and the README's table ask this
module; nothing else decides whether an action is allowed. It is pure: callers supply
the facts a guard needs (counts, times) and apply the result with a conditional UPDATE
(`WHERE id=? AND status=<source>`), so the database enforces the same table under races.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.campaign_input import MAX_BODY
from domain.errors import InvalidTransition, ValidationFailed


class CampaignStatus(StrEnum):
    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


class Action(StrEnum):
    # User actions: the contract's CampaignAction enum, same names.
    EDIT = "EDIT"
    ADD_RECIPIENTS = "ADD_RECIPIENTS"
    REMOVE_RECIPIENTS = "REMOVE_RECIPIENTS"
    DELETE = "DELETE"
    SCHEDULE = "SCHEDULE"
    SEND_NOW = "SEND_NOW"
    RESCHEDULE = "RESCHEDULE"
    UNSCHEDULE = "UNSCHEDULE"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    CANCEL = "CANCEL"
    RETRY_FAILED = "RETRY_FAILED"
    RETRY = "RETRY"
    DUPLICATE = "DUPLICATE"
    # System actions: taken by the scheduler, workers and the failure guard.
    START = "START"  # SCHEDULED -> QUEUED when the time comes
    CLAIM = "CLAIM"  # QUEUED -> PROCESSING when a worker takes it
    COMPLETE = "COMPLETE"  # PROCESSING -> COMPLETED when nothing is pending
    AUTO_PAUSE = "AUTO_PAUSE"  # QUEUED/PROCESSING -> PAUSED: the failure guard, a stopped template
    FAIL = "FAIL"  # QUEUED/PROCESSING -> FAILED when it cannot go on


USER_ACTIONS: tuple[Action, ...] = (
    Action.EDIT,
    Action.ADD_RECIPIENTS,
    Action.REMOVE_RECIPIENTS,
    Action.DELETE,
    Action.SCHEDULE,
    Action.SEND_NOW,
    Action.RESCHEDULE,
    Action.UNSCHEDULE,
    Action.PAUSE,
    Action.RESUME,
    Action.CANCEL,
    Action.RETRY_FAILED,
    Action.RETRY,
    Action.DUPLICATE,
)

S = CampaignStatus
A = Action

# Sentinel target for DELETE: the campaign stops existing.
DELETED = None

#: The whole lifecycle. A target equal to the source means "allowed, status unchanged".
TABLE: dict[tuple[CampaignStatus, Action], CampaignStatus | None] = {
    (S.DRAFT, A.EDIT): S.DRAFT,
    (S.DRAFT, A.ADD_RECIPIENTS): S.DRAFT,
    (S.DRAFT, A.REMOVE_RECIPIENTS): S.DRAFT,
    (S.DRAFT, A.DELETE): DELETED,
    (S.DRAFT, A.SCHEDULE): S.SCHEDULED,
    (S.DRAFT, A.SEND_NOW): S.QUEUED,
    (S.DRAFT, A.DUPLICATE): S.DRAFT,
    (S.SCHEDULED, A.RESCHEDULE): S.SCHEDULED,
    (S.SCHEDULED, A.UNSCHEDULE): S.DRAFT,
    (S.SCHEDULED, A.CANCEL): S.CANCELLED,
    (S.SCHEDULED, A.DUPLICATE): S.SCHEDULED,
    (S.SCHEDULED, A.START): S.QUEUED,
    (S.QUEUED, A.PAUSE): S.PAUSED,
    (S.QUEUED, A.CANCEL): S.CANCELLED,
    (S.QUEUED, A.DUPLICATE): S.QUEUED,
    (S.QUEUED, A.CLAIM): S.PROCESSING,
    (S.QUEUED, A.FAIL): S.FAILED,
    (S.QUEUED, A.AUTO_PAUSE): S.PAUSED,
    (S.PROCESSING, A.PAUSE): S.PAUSED,
    (S.PROCESSING, A.CANCEL): S.CANCELLED,
    (S.PROCESSING, A.DUPLICATE): S.PROCESSING,
    (S.PROCESSING, A.COMPLETE): S.COMPLETED,
    (S.PROCESSING, A.AUTO_PAUSE): S.PAUSED,
    (S.PROCESSING, A.FAIL): S.FAILED,
    (S.PAUSED, A.RESUME): S.QUEUED,
    (S.PAUSED, A.CANCEL): S.CANCELLED,
    (S.PAUSED, A.DUPLICATE): S.PAUSED,
    (S.COMPLETED, A.RETRY_FAILED): S.QUEUED,
    (S.COMPLETED, A.DUPLICATE): S.COMPLETED,
    (S.CANCELLED, A.DUPLICATE): S.CANCELLED,
    (S.FAILED, A.RETRY): S.QUEUED,
    (S.FAILED, A.DUPLICATE): S.FAILED,
}

TERMINAL: frozenset[CampaignStatus] = frozenset({S.COMPLETED, S.CANCELLED, S.FAILED})
#: Statuses in which a worker may be sending; Pause and Cancel must reach it at once.
ACTIVE: frozenset[CampaignStatus] = frozenset({S.QUEUED, S.PROCESSING})


@dataclass(frozen=True, slots=True)
class Transition:
    source: CampaignStatus
    action: Action
    target: CampaignStatus | None

    @property
    def changes_status(self) -> bool:
        return self.target is not None and self.target != self.source


def allowed_actions(status: CampaignStatus) -> list[Action]:
    """The user actions allowed in `status`, in the contract's order."""
    return [a for a in USER_ACTIONS if (status, a) in TABLE]


def sources_of(action: Action) -> list[CampaignStatus]:
    """Every status from which `action` is allowed (for conditional UPDATEs with IN)."""
    return [s for s in CampaignStatus if (s, action) in TABLE]


def transition(status: CampaignStatus, action: Action) -> Transition:
    """The transition for `action` in `status`, or InvalidTransition naming what is allowed."""
    try:
        target = TABLE[(status, action)]
    except KeyError:
        raise InvalidTransition(status.value, action.value, [a.value for a in allowed_actions(status)]) from None
    return Transition(status, action, target)


# ---------------------------------------------------------------------------- guards


@dataclass(frozen=True, slots=True)
class LaunchFacts:
    """What the SCHEDULE / SEND_NOW / RESCHEDULE guards need to know."""

    recipients: int
    #: phones of (some) recipients lacking a variable the body uses, and those names
    missing_variables: tuple[tuple[str, tuple[str, ...]], ...] = ()
    missing_count: int = 0
    #: the recipient whose rendered message is the longest, and its length
    longest: tuple[str, int] | None = None
    scheduled_at: datetime | None = None
    now: datetime | None = None
    #: for a local-time schedule (domain/delivery.LocalSend): the chosen date and time in
    #: each zone of its recipients; it must still be ahead in at least one
    local_times: tuple[datetime, ...] = ()


def check_launch(action: Action, facts: LaunchFacts) -> None:
    """Guards for leaving DRAFT (and for moving a schedule): raise ValidationFailed."""
    if action in (Action.SCHEDULE, Action.RESCHEDULE):
        if facts.local_times and facts.now is not None and max(facts.local_times) <= facts.now:
            raise ValidationFailed(
                f"That local time has already passed in every recipient's time zone (the last of them at "
                f"{max(facts.local_times).isoformat()}, now is {facts.now.isoformat()}); choose a later date.",
                ("time",),
            )
        if facts.scheduled_at is None or facts.now is None:
            raise ValidationFailed("scheduledAt is required.", ("scheduledAt",))
        if facts.scheduled_at <= facts.now:
            raise ValidationFailed(
                f"scheduledAt must be in the future (it is {facts.scheduled_at.isoformat()}, "
                f"now is {facts.now.isoformat()}).",
                ("scheduledAt",),
            )
        if action is Action.RESCHEDULE:
            return
    if facts.recipients <= 0:
        raise ValidationFailed("The campaign has no recipients.", ("id",))
    if facts.missing_count:
        phone, names = facts.missing_variables[0]
        raise ValidationFailed(
            f"{facts.missing_count} recipient(s) lack variables the body uses; "
            f"for example {phone} has no {', '.join(names)}.",
            ("id",),
        )
    if facts.longest is not None and facts.longest[1] > MAX_BODY:
        phone, length = facts.longest
        raise ValidationFailed(
            f"The message to {phone} would be {length:,} characters; WhatsApp takes at most {MAX_BODY:,}. "
            "Shorten the body or that recipient's variables.",
            ("id",),
        )


def check_retry_failed(retryable: int) -> None:
    """RETRY_FAILED needs at least one failed message that may be sent again."""
    if retryable <= 0:
        raise ValidationFailed(
            "No failed messages can be retried (invalid or opted-out recipients stay failed).",
            ("id",),
        )


# ===================================================================== recurring schedules
# A second, separate table: the small lifecycle of a recurring schedule (domain/recurrence.py
# computes its occurrences), and the guards on the campaign that serves as its model.


class ScheduleStatus(StrEnum):
    #: occurrences are created at their times
    ACTIVE = "ACTIVE"
    #: no occurrence is created; RESUME goes on from the next slot after the resume
    PAUSED = "PAUSED"
    #: for good: ended by a user, or by the schedule itself (maxRuns reached, endsAt passed)
    ENDED = "ENDED"


class ScheduleAction(StrEnum):
    """The contract's RecurringScheduleAction; END is also the system's, when maxRuns or
    endsAt say the schedule is over."""

    PAUSE = "PAUSE"
    RESUME = "RESUME"
    END = "END"


SS = ScheduleStatus
SA = ScheduleAction

#: The whole lifecycle of a recurring schedule: (status, action) -> status.
SCHEDULE_TABLE: dict[tuple[ScheduleStatus, ScheduleAction], ScheduleStatus] = {
    (SS.ACTIVE, SA.PAUSE): SS.PAUSED,
    (SS.ACTIVE, SA.END): SS.ENDED,
    (SS.PAUSED, SA.RESUME): SS.ACTIVE,
    (SS.PAUSED, SA.END): SS.ENDED,
}

#: a schedule that may still create occurrences: its model campaign is guarded
LIVE_SCHEDULE: frozenset[ScheduleStatus] = frozenset({SS.ACTIVE, SS.PAUSED})


class InvalidScheduleTransition(InvalidTransition):
    """The action is not in SCHEDULE_TABLE for the schedule's current status."""

    def __init__(self, status: str, action: str, allowed: list[str]) -> None:
        super().__init__(status, action, allowed)
        self.message = (
            f"Cannot {action} a recurring schedule that is {status}; allowed actions: {', '.join(allowed) or 'none'}."
        )
        self.args = (self.message,)


def schedule_allowed_actions(status: ScheduleStatus) -> list[ScheduleAction]:
    """The actions allowed on a schedule in `status`, in the contract's order."""
    return [a for a in ScheduleAction if (status, a) in SCHEDULE_TABLE]


def schedule_transition(status: ScheduleStatus, action: ScheduleAction) -> ScheduleStatus:
    """The status `action` leads to, or InvalidScheduleTransition naming what is allowed."""
    try:
        return SCHEDULE_TABLE[(status, action)]
    except KeyError:
        allowed = [a.value for a in schedule_allowed_actions(status)]
        raise InvalidScheduleTransition(status.value, action.value, allowed) from None


def check_model_action(action: Action, schedule: ScheduleStatus | None) -> None:
    """Guards on a campaign that is the model of a recurring schedule in status
    `schedule` (None: it models none). While the schedule is live the model stays a
    DRAFT: its edits and recipients apply to the occurrences to come, so it is never
    sent itself (each occurrence is a campaign of its own) and is not deleted under its
    schedule (end the schedule first; an ENDED schedule goes with its model)."""
    if schedule not in LIVE_SCHEDULE:
        return
    if action in (Action.SCHEDULE, Action.SEND_NOW):
        raise ValidationFailed(
            f"This campaign is the model of a recurring schedule ({schedule}): each occurrence is sent as a "
            "campaign of its own. Duplicate it to send it once, or end the schedule first.",
            ("id",),
        )
    if action is Action.DELETE:
        raise ValidationFailed(
            f"This campaign is the model of a recurring schedule ({schedule}); end the schedule first "
            "(endRecurringSchedule), then delete it.",
            ("id",),
        )
