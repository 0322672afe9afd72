"""services.transitions on the real database: each status change is one conditional
UPDATE on (id, status, version) with its CampaignEvent, so a change that lost a race
re-reads and decides again from the new status, and of concurrent actions on one
campaign exactly one wins; the columns, message rows and counters that move with it.
(tests/schema/test_lifecycle_api.py walks every (status, action) pair through GraphQL.)"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import Conflict, DomainError, InvalidTransition, NotFound, ValidationFailed
from domain.ids import expect_id
from domain.lease import StopConfirmation
from domain.lifecycle import Action, CampaignStatus, Transition
from models import Campaign, CampaignEvent, Message
from services import counters, db, transitions
from services.auth import Principal
from services.transitions import Applied, apply_action, apply_system_action, count_retryable
from tests.conftest import Api
from tests.schema.states import campaign_in
from tests.services.test_receipts import assert_consistent

A, S = Action, CampaignStatus

#: error codes of the failed messages `completed` makes, retryable ones first
RETRYABLE = ["131000", None, "in_doubt"]
PERMANENT = ["131026", "131050", "opted_out", "invalid_recipient"]


def soon(minutes: int = 60) -> datetime:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).replace(microsecond=0)


async def in_status(api: Api, status: CampaignStatus, recipients: int = 3) -> int:
    return expect_id((await campaign_in(api, status, recipients=recipients))["id"], "Campaign")


async def history(pk: int) -> list[tuple[CampaignStatus | None, CampaignStatus, str, str, str | None]]:
    events = await CampaignEvent.filter(campaign_id=pk).order_by("id")
    return [(e.from_status, e.to_status, e.action, e.actor, e.reason) for e in events]


async def completed(api: Api, sent: int = 2) -> tuple[int, list[int]]:
    """A COMPLETED campaign: `sent` messages SENT (one of them delivered), then one FAILED
    per code of RETRYABLE + PERMANENT, each with what its send left on the row. Returns
    the campaign and the failed messages' ids in that order."""
    codes = RETRYABLE + PERMANENT
    pk = await in_status(api, S.PROCESSING, recipients=sent + len(codes))
    ids: list[int] = await Message.filter(campaign_id=pk).order_by("id").values_list("id", flat=True)  # type: ignore[assignment]
    now = datetime.now(UTC)
    async with db.in_transaction() as conn:
        await (
            Message.filter(id__in=ids[:sent])
            .using_db(conn)
            .update(status="SENT", provider_message_id="wamid.ok", sent_at=now, attempts=1)
        )
        await Message.filter(id=ids[0]).using_db(conn).update(status="DELIVERED", delivered_at=now)
        for mid, code in zip(ids[sent:], codes, strict=True):
            await (
                Message.filter(id=mid)
                .using_db(conn)
                .update(
                    status="FAILED",
                    error_code=code,
                    error_message="it failed",
                    provider_message_id=f"wamid.{mid}",
                    sent_at=now,
                    failed_at=now,
                    attempts=2,
                )
            )
        await counters.move(conn, pk, pending=-len(ids), sent=sent, delivered=1, failed=len(codes))
    assert await apply_system_action(pk, A.COMPLETE, actor="worker") is not None
    await assert_consistent(pk)
    return pk, ids[sent:]


async def test_count_retryable_counts_failures_without_a_permanent_recipient_error(api: Api) -> None:
    pk, _ = await completed(api)
    assert await count_retryable(db.client(), pk) == len(RETRYABLE)  # a NULL code is retryable too
    assert await count_retryable(db.client(), 987_654_321) == 0


async def test_retry_failed_starts_a_new_send_round_for_the_retryable_failures_only(api: Api) -> None:
    pk, failed = await completed(api)
    assert (await Campaign.get(id=pk)).completed_at is not None
    applied = await apply_action(api.principal, pk, A.RETRY_FAILED)
    campaign = applied.campaign
    assert (campaign.status, campaign.completed_at, campaign.pending, campaign.failed) == (
        S.QUEUED,
        None,
        len(RETRYABLE),
        len(PERMANENT),
    )
    rows = {m.id: m for m in await Message.filter(id__in=failed)}
    for mid in failed[: len(RETRYABLE)]:
        m = rows[mid]
        assert (m.status, m.error_code, m.error_message, m.provider_message_id, m.send_round) == (
            "PENDING",
            None,
            None,
            None,
            1,
        )
        assert (m.sent_at, m.delivered_at, m.read_at, m.failed_at, m.doubt_at) == (None, None, None, None, None)
    for mid, code in zip(failed[len(RETRYABLE) :], PERMANENT, strict=True):
        m = rows[mid]
        assert (m.status, m.error_code, m.provider_message_id, m.send_round) == ("FAILED", code, f"wamid.{mid}", 0)
    await assert_consistent(pk)
    assert await count_retryable(db.client(), pk) == 0


async def test_schedule_reschedule_and_unschedule_set_the_time_and_a_new_token_each(api: Api) -> None:
    pk = await in_status(api, S.DRAFT)
    version = (await Campaign.get(id=pk)).version
    at, later = soon(60), soon(120)
    first = (await apply_action(api.principal, pk, A.SCHEDULE, scheduled_at=at)).campaign
    assert (first.status, first.scheduled_at, first.version) == (S.SCHEDULED, at, version + 1)
    assert first.schedule_token
    moved = (await apply_action(api.principal, pk, A.RESCHEDULE, scheduled_at=later)).campaign
    assert (moved.status, moved.scheduled_at, moved.version) == (S.SCHEDULED, later, version + 2)
    assert moved.schedule_token and moved.schedule_token != first.schedule_token  # the old start job is stale
    back = (await apply_action(api.principal, pk, A.UNSCHEDULE)).campaign
    assert (back.status, back.scheduled_at, back.schedule_token, back.version) == (S.DRAFT, None, None, version + 3)
    assert [e[:3] for e in (await history(pk))[-3:]] == [
        (S.DRAFT, S.SCHEDULED, "SCHEDULE"),
        (S.SCHEDULED, S.SCHEDULED, "RESCHEDULE"),
        (S.SCHEDULED, S.DRAFT, "UNSCHEDULE"),
    ]


async def test_a_schedule_without_a_time_is_refused_naming_the_field_and_writes_nothing(api: Api) -> None:
    pk = await in_status(api, S.DRAFT)
    with pytest.raises(ValidationFailed) as refused:
        await apply_action(api.principal, pk, A.SCHEDULE)
    assert (refused.value.code.value, refused.value.field) == ("VALIDATION", ("scheduledAt",))
    await apply_action(api.principal, pk, A.SCHEDULE, scheduled_at=soon())
    before = await Campaign.get(id=pk)
    with pytest.raises(ValidationFailed) as moved:
        await apply_action(api.principal, pk, A.RESCHEDULE, scheduled_at=None)
    assert moved.value.field == ("scheduledAt",)
    after = await Campaign.get(id=pk)
    assert (after.version, after.scheduled_at, after.schedule_token) == (
        before.version,
        before.scheduled_at,
        before.schedule_token,
    )


async def test_a_reason_is_kept_while_stopped_and_cleared_when_queued_again(api: Api) -> None:
    pk = await in_status(api, S.PROCESSING)
    paused = await apply_system_action(pk, A.AUTO_PAUSE, actor="failure-guard", reason="failure rate 60%")
    assert paused is not None and (paused.status, paused.status_reason) == (S.PAUSED, "failure rate 60%")
    resumed = (await apply_action(api.principal, pk, A.RESUME)).campaign
    assert (resumed.status, resumed.status_reason) == (S.QUEUED, None)
    assert (await history(pk))[-2:] == [
        (S.PROCESSING, S.PAUSED, "AUTO_PAUSE", "failure-guard", "failure rate 60%"),
        (S.PAUSED, S.QUEUED, "RESUME", "tester", None),
    ]


async def test_a_cancel_keeps_the_lease_for_the_run_that_holds_it_and_drops_the_schedule(api: Api) -> None:
    pk = await in_status(api, S.PROCESSING)
    await Campaign.filter(id=pk).update(
        lease_owner="worker-1", lease_expires_at=datetime.now(UTC) + timedelta(seconds=15), schedule_token="stale"
    )
    cancelled = (await apply_action(api.principal, pk, A.CANCEL, reason="wrong list")).campaign
    assert (cancelled.status, cancelled.status_reason, cancelled.schedule_token, cancelled.lease_owner) == (
        S.CANCELLED,
        "wrong list",
        None,
        "worker-1",  # the run sees the cancel and releases it itself
    )
    await assert_consistent(pk)


async def test_refusals_name_the_status_and_allowed_actions_or_not_found_and_write_nothing(
    api: Api, other_api: Api
) -> None:
    pk = await in_status(api, S.COMPLETED)
    before = await Campaign.get(id=pk)
    with pytest.raises(InvalidTransition) as refused:
        await apply_action(api.principal, pk, A.PAUSE)
    error = refused.value
    assert (error.code.value, error.field, error.status, error.action, error.allowed) == (
        "INVALID_TRANSITION",
        ("id",),
        "COMPLETED",
        "PAUSE",
        ("RETRY_FAILED", "DUPLICATE"),
    )
    with pytest.raises(NotFound) as foreign:
        await apply_action(other_api.principal, pk, A.DUPLICATE)
    assert (foreign.value.code.value, foreign.value.field) == ("NOT_FOUND", ("id",))
    after = await Campaign.get(id=pk)
    assert (after.status, after.version) == (before.status, before.version)
    assert len(await history(pk)) == 4  # CREATE, SEND_NOW, CLAIM, COMPLETE


async def test_a_system_action_the_campaign_does_not_allow_now_does_nothing(api: Api) -> None:
    pk = await in_status(api, S.QUEUED)
    version = (await Campaign.get(id=pk)).version
    events = len(await history(pk))
    assert await apply_system_action(pk, A.COMPLETE, actor="worker") is None  # not from QUEUED
    assert await apply_system_action(pk, A.CLAIM, actor="worker", expect=S.PAUSED) is None
    assert await apply_system_action(pk, A.CLAIM, actor="worker", guard=lambda c: c.lease_fence > 0) is None
    assert await apply_system_action(987_654_321, A.CLAIM, actor="worker") is None
    after = await Campaign.get(id=pk)
    assert (after.status, after.version, len(await history(pk))) == (S.QUEUED, version, events)
    claimed = await apply_system_action(pk, A.CLAIM, actor="worker-7", expect=S.QUEUED, guard=lambda c: True)
    assert claimed is not None and (claimed.status, claimed.version) == (S.PROCESSING, version + 1)
    assert (await history(pk))[-1] == (S.QUEUED, S.PROCESSING, "CLAIM", "worker-7", None)


async def test_the_after_hook_sees_the_committed_change_and_its_answer_is_returned(api: Api) -> None:
    pk = await in_status(api, S.PROCESSING)
    seen: list[tuple[CampaignStatus, int, Transition, CampaignStatus]] = []

    async def after(campaign: Campaign, t: Transition) -> StopConfirmation | None:
        stored = await Campaign.get(id=campaign.id)  # another connection on PostgreSQL: committed
        seen.append((campaign.status, campaign.version, t, stored.status))
        return StopConfirmation.ACKNOWLEDGED if t.action is A.PAUSE else None

    version = (await Campaign.get(id=pk)).version
    applied = await apply_action(api.principal, pk, A.PAUSE, after=after)
    assert applied == Applied(applied.campaign, StopConfirmation.ACKNOWLEDGED)
    assert seen == [(S.PAUSED, version + 1, Transition(S.PROCESSING, A.PAUSE, S.PAUSED), S.PAUSED)]
    with pytest.raises(InvalidTransition):
        await apply_action(api.principal, pk, A.PAUSE, after=after)
    assert await apply_system_action(pk, A.COMPLETE, actor="worker", after=after) is None
    assert len(seen) == 1  # never called for what did not commit
    resumed = await apply_action(api.principal, pk, A.RESUME, after=after)
    assert resumed.stop is None and seen[-1][2] == Transition(S.PAUSED, A.RESUME, S.QUEUED)


def racing_reads(
    monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[int], Awaitable[None]], times: int = 1
) -> list[int]:
    """After each of apply_action's first `times` reads, `meanwhile(pk)` commits a change
    before the conditional UPDATE runs. Returns the list of reads made, by version."""
    real = transitions.get_campaign
    reads: list[int] = []

    async def read(principal: Principal, pk: int, field: tuple[str, ...] = ("id",)) -> Campaign:
        campaign = await real(principal, pk, field)
        reads.append(campaign.version)
        if len(reads) <= times:
            await meanwhile(pk)
        return campaign

    monkeypatch.setattr(transitions, "get_campaign", read)
    return reads


async def test_a_change_that_lost_a_race_decides_again_from_the_new_status(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PAUSE read QUEUED; a worker's CLAIM commits before its UPDATE: the UPDATE matches
    nothing, the re-read finds PROCESSING, and the pause applies from there."""
    pk = await in_status(api, S.QUEUED)

    async def claim(campaign_id: int) -> None:
        assert await apply_system_action(campaign_id, A.CLAIM, actor="worker") is not None

    reads = racing_reads(monkeypatch, claim)
    applied = await apply_action(api.principal, pk, A.PAUSE)
    assert applied.campaign.status is S.PAUSED
    assert reads[1] == reads[0] + 1  # re-read after the lost race
    assert [e[:3] for e in (await history(pk))[-2:]] == [
        (S.QUEUED, S.PROCESSING, "CLAIM"),
        (S.PROCESSING, S.PAUSED, "PAUSE"),  # from where it really was: no gap in the history
    ]


async def test_a_change_that_lost_a_race_to_a_cancel_is_refused_from_cancelled(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    pk = await in_status(api, S.PAUSED, recipients=4)

    async def cancel(campaign_id: int) -> None:
        assert await apply_system_action(campaign_id, A.CANCEL, actor="other-request") is not None

    racing_reads(monkeypatch, cancel)
    with pytest.raises(InvalidTransition) as refused:
        await apply_action(api.principal, pk, A.RESUME)
    assert refused.value.status == "CANCELLED"
    assert (await history(pk))[-1][:4] == (S.PAUSED, S.CANCELLED, "CANCEL", "other-request")
    counters_now = await assert_consistent(pk)
    assert (counters_now["pending"], counters_now["cancelled"]) == (0, 4)


async def test_a_retry_of_failed_messages_that_lost_a_race_to_another_is_refused_from_queued(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests retry the failed messages; the other one commits between this one's
    read (COMPLETED) and its guard. The campaign is QUEUED now: the refusal must say so
    (INVALID_TRANSITION, which makes the API return the campaign as it is), as a PAUSE
    that lost to a CANCEL does, not report that nothing can be retried, which is false:
    it was retried."""
    pk, _ = await completed(api)

    async def other_retry(campaign_id: int) -> None:
        assert await apply_system_action(campaign_id, A.RETRY_FAILED, actor="other-request") is not None

    racing_reads(monkeypatch, other_retry)
    with pytest.raises(DomainError) as refused:
        await apply_action(api.principal, pk, A.RETRY_FAILED)
    assert (await Campaign.get(id=pk)).status is S.QUEUED
    assert isinstance(refused.value, InvalidTransition), f"{refused.value.code.value}: {refused.value.message}"
    assert refused.value.status == "QUEUED"


async def test_a_campaign_that_keeps_changing_under_every_attempt_is_a_conflict(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    pk = await in_status(api, S.PROCESSING)

    async def bump(campaign_id: int) -> None:  # somebody else's write each time
        await Campaign.filter(id=campaign_id).update(version=(await Campaign.get(id=campaign_id)).version + 1)

    reads = racing_reads(monkeypatch, bump, times=100)
    with pytest.raises(Conflict) as refused:
        await apply_action(api.principal, pk, A.PAUSE)
    assert (refused.value.code.value, refused.value.field) == ("CONFLICT", ("id",))
    assert len(reads) == 5  # five attempts, then it gives up
    assert (await Campaign.get(id=pk)).status is S.PROCESSING
    assert (await history(pk))[-1][2] == "CLAIM"  # no event of the pause


async def test_of_concurrent_cancels_exactly_one_wins_and_moves_the_messages_once(api: Api) -> None:
    pk = await in_status(api, S.PROCESSING, recipients=20)
    results = await asyncio.gather(
        *(apply_action(api.principal, pk, A.CANCEL, reason=f"cancel {i}") for i in range(10)), return_exceptions=True
    )
    won = [r for r in results if isinstance(r, Applied)]
    lost = [r for r in results if not isinstance(r, Applied)]
    assert len(won) == 1 and len(lost) == 9
    assert all(isinstance(e, InvalidTransition) and e.status == "CANCELLED" for e in lost), lost
    cancels = [e for e in await history(pk) if e[2] == "CANCEL"]
    assert len(cancels) == 1 and cancels[0][4] == won[0].campaign.status_reason
    counters_now = await assert_consistent(pk)
    assert (counters_now["pending"], counters_now["cancelled"]) == (0, 20)


async def test_of_concurrent_retries_of_failed_messages_exactly_one_resends_them(api: Api) -> None:
    pk, failed = await completed(api)
    results = await asyncio.gather(
        *(apply_action(api.principal, pk, A.RETRY_FAILED) for _ in range(6)), return_exceptions=True
    )
    assert sum(isinstance(r, Applied) for r in results) == 1
    assert all(isinstance(r, Applied | DomainError) for r in results), results  # refused, however worded
    rounds = await Message.filter(id__in=failed[: len(RETRYABLE)]).values_list("send_round", flat=True)
    assert list(rounds) == [1] * len(RETRYABLE)  # one new round, not six
    assert [e[2] for e in await history(pk)].count("RETRY_FAILED") == 1
    await assert_consistent(pk)


async def test_a_user_action_racing_system_actions_leaves_one_change(api: Api) -> None:
    pk = await in_status(api, S.PROCESSING, recipients=2)
    before = await Campaign.get(id=pk)
    results = await asyncio.gather(
        apply_action(api.principal, pk, A.PAUSE),
        apply_system_action(pk, A.COMPLETE, actor="worker"),
        apply_system_action(pk, A.FAIL, actor="worker", reason="token revoked"),
        apply_system_action(pk, A.AUTO_PAUSE, actor="failure-guard"),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, Applied | Campaign)]
    assert len(winners) == 1, results
    assert all(r is None or isinstance(r, InvalidTransition) for r in results if r not in winners)
    after = await Campaign.get(id=pk)
    assert after.version == before.version + 1
    [last] = (await history(pk))[-1:]
    assert (last[0], last[1]) == (S.PROCESSING, after.status)
    assert len(await history(pk)) == 4  # CREATE, SEND_NOW, CLAIM and the one winner
