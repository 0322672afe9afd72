"""services/webhook_outbox.py on the real database: deliveries written in the
transaction of the status change they tell (one per enabled endpoint subscribed to it,
none for a change that lost its race or rolled back), campaign.completed with the
numbers of that moment, the `due` scan and its one-at-a-time order per (endpoint,
campaign), and the claims and fenced outcomes dispatchers share.
(tests/jobs/test_webhooks.py drives the same rows through the dispatcher over HTTP.)"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain import webhooks as wh
from domain.errors import InvalidTransition
from domain.ids import expect_id, to_global_id
from domain.lifecycle import Action, CampaignStatus
from domain.stats import STAT_FIELDS
from models import Campaign, CampaignEvent, WebhookDelivery, WebhookEndpoint
from services import db, webhook_outbox
from services import webhooks as endpoints
from services.transitions import Applied, apply_action, apply_system_action
from tests.conftest import Api
from tests.services.test_transitions import completed, history, in_status, racing_reads

A, S, D = Action, CampaignStatus, wh.DeliveryStatus
CHANGED, COMPLETED = wh.EventType.CAMPAIGN_STATUS_CHANGED.value, wh.EventType.CAMPAIGN_COMPLETED.value
ALL = [CHANGED, COMPLETED]
HOLD = timedelta(seconds=30)
#: far more than the deliveries any test session leaves pending: `due` scans them all
SCAN = 100_000


async def endpoint(api: Api, events: list[str] = ALL, *, enabled: bool = True) -> int:
    view, _ = await endpoints.create_endpoint(
        api.principal, "http://127.0.0.1:9/hook", events, enabled=enabled, allow_private=True
    )
    return view.id


async def rows_of(endpoint_id: int, campaign_id: int | None = None) -> list[WebhookDelivery]:
    query = WebhookDelivery.filter(endpoint_id=endpoint_id)
    if campaign_id is not None:
        query = query.filter(campaign_id=campaign_id)
    return await query.order_by("id")


def event(row: WebhookDelivery) -> dict[str, Any]:
    return dict(json.loads(row.body))


def later(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


async def due_for(*endpoint_ids: int, now: datetime | None = None) -> list[int]:
    """The delivery ids `due` returns for these endpoints (other tests' rows are there too)."""
    found = await webhook_outbox.due(now or later(seconds=1), SCAN)
    return [d for d, e in found if e in endpoint_ids]


async def created(api: Api, name: str = "Spring sale") -> int:
    """A DRAFT campaign with one recipient (so that it can be scheduled)."""
    return expect_id((await api.ready_campaign(1, name=name))["id"], "Campaign")


# --- what is recorded --------------------------------------------------------------


async def test_a_status_change_is_recorded_for_each_enabled_endpoint_subscribed_to_it(api: Api, other_api: Api) -> None:
    both = await endpoint(api)
    changes = await endpoint(api, [CHANGED])
    disabled = await endpoint(api, enabled=False)
    completions = await endpoint(api, [COMPLETED])
    foreign = await endpoint(other_api)
    pk = await in_status(api, S.DRAFT)
    await apply_action(api.principal, pk, A.SCHEDULE, scheduled_at=later(hours=1))
    assert await rows_of(disabled) == [] and await rows_of(completions) == [] and await rows_of(foreign) == []
    events = await CampaignEvent.filter(campaign_id=pk).order_by("id")
    for endpoint_id in (both, changes):
        rows = await rows_of(endpoint_id)
        assert [(r.event_type, r.campaign_id, r.status, r.attempts, r.locked_until) for r in rows] == [
            (CHANGED, pk, D.PENDING, 0, None)
        ] * 2
        assert all(r.next_attempt_at == r.created_at for r in rows)  # due at once
        bodies = [event(r) for r in rows]
        assert [(b["data"]["from"], b["data"]["to"], b["data"]["action"]) for b in bodies] == [
            (None, "DRAFT", "CREATE"),
            ("DRAFT", "SCHEDULED", "SCHEDULE"),
        ]
        for body, row, told in zip(bodies, rows, events, strict=True):
            assert body["id"] == row.event_id and body["type"] == CHANGED
            assert body["workspaceId"] == to_global_id("Workspace", api.principal.workspace_id)
            assert body["data"]["campaignId"] == to_global_id("Campaign", pk)
            assert (body["data"]["actor"], body["data"]["name"]) == (told.actor, "Spring sale")
            assert datetime.fromisoformat(body["data"]["at"]) == told.at == row.created_at
    # one event id per change, the same for every endpoint (receivers de-duplicate on it)
    assert [r.event_id for r in await rows_of(both)] == [r.event_id for r in await rows_of(changes)]
    assert len({r.event_id for r in await rows_of(both)}) == 2


async def test_a_disabled_endpoint_gets_no_new_events_and_an_enabled_again_one_does(api: Api) -> None:
    hook = await endpoint(api, [CHANGED])
    pk = await created(api)
    await endpoints.update_endpoint(api.principal, hook, enabled=False)
    await apply_action(api.principal, pk, A.SCHEDULE, scheduled_at=later(hours=1))
    await endpoints.update_endpoint(api.principal, hook, enabled=True)
    await apply_action(api.principal, pk, A.UNSCHEDULE)
    assert [event(r)["data"]["action"] for r in await rows_of(hook)] == ["CREATE", "UNSCHEDULE"]


async def test_without_endpoints_nothing_is_recorded(api: Api) -> None:
    pk = await created(api)
    change = webhook_outbox.Change(
        pk, api.principal.workspace_id, "x", S.DRAFT, S.SCHEDULED, "SCHEDULE", "t", None, later()
    )
    async with db.in_transaction() as conn:
        assert await webhook_outbox.record_change(conn, change) == 0
    assert not await WebhookDelivery.filter(campaign_id=pk).exists()


async def test_the_deliveries_roll_back_with_the_change_they_tell(api: Api) -> None:
    hook = await endpoint(api)
    pk = await created(api)
    change = webhook_outbox.Change(
        pk, api.principal.workspace_id, "x", S.DRAFT, S.COMPLETED, "COMPLETE", "t", None, later()
    )
    with pytest.raises(RuntimeError):
        async with db.in_transaction() as conn:
            assert await webhook_outbox.record_change(conn, change) == 2  # status_changed and completed
            raise RuntimeError("the change fails after its events were written")
    assert [event(r)["data"]["action"] for r in await rows_of(hook)] == ["CREATE"]


async def test_of_concurrent_changes_only_the_one_that_committed_is_told(api: Api) -> None:
    hook = await endpoint(api)
    pk = await in_status(api, S.DRAFT)
    at = later(hours=1)
    results = await asyncio.gather(
        *(apply_action(api.principal, pk, A.SCHEDULE, scheduled_at=at) for _ in range(6)), return_exceptions=True
    )
    assert sum(isinstance(r, Applied) for r in results) == 1
    assert all(isinstance(r, Applied | InvalidTransition) for r in results), results
    told = await rows_of(hook)
    assert len(told) == await CampaignEvent.filter(campaign_id=pk).count() == 2
    assert [(event(r)["data"]["from"], event(r)["data"]["to"]) for r in told] == [
        (None, "DRAFT"),
        ("DRAFT", "SCHEDULED"),
    ]


async def test_a_change_that_lost_its_race_is_told_as_it_was_applied_again(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PAUSE read QUEUED, a CLAIM committed before its UPDATE: the QUEUED -> PAUSED that
    lost is not told, the CLAIM and the PAUSE from PROCESSING are, as in the history."""
    hook = await endpoint(api, [CHANGED])
    pk = await in_status(api, S.QUEUED)

    async def claim(campaign_id: int) -> None:
        assert await apply_system_action(campaign_id, A.CLAIM, actor="worker") is not None

    racing_reads(monkeypatch, claim)
    await apply_action(api.principal, pk, A.PAUSE)
    told = [event(r)["data"] for r in await rows_of(hook)]
    assert [(d["from"], d["to"], d["action"], d["actor"]) for d in told] == [
        (f.value if f is not None else None, t.value, action, actor) for f, t, action, actor, _ in await history(pk)
    ]
    assert [d["action"] for d in told] == ["CREATE", "SEND_NOW", "CLAIM", "PAUSE"]


async def test_a_completion_is_told_then_its_numbers_as_they_are_in_the_database(api: Api) -> None:
    both = await endpoint(api)
    changes = await endpoint(api, [CHANGED])
    completions = await endpoint(api, [COMPLETED])
    pk, _ = await completed(api)
    campaign = await Campaign.get(id=pk)
    numbers = {name: getattr(campaign, name) for name in STAT_FIELDS}
    assert numbers == {
        "total": 9,
        "pending": 0,
        "sent": 2,
        "delivered": 1,
        "read": 0,
        "replied": 0,
        "failed": 7,
        "cancelled": 0,
    }
    last_two = (await rows_of(both))[-2:]
    assert [r.event_type for r in last_two] == [CHANGED, COMPLETED]  # COMPLETED, then the final numbers
    change, done = (event(r) for r in last_two)
    assert (change["data"]["from"], change["data"]["to"], change["data"]["action"]) == (
        "PROCESSING",
        "COMPLETED",
        "COMPLETE",
    )
    assert done["type"] == COMPLETED and done["data"]["stats"] == numbers
    assert done["data"]["campaignId"] == to_global_id("Campaign", pk) and done["data"]["name"] == campaign.name
    # the API's completedAt and the event's are one time
    assert datetime.fromisoformat(done["data"]["completedAt"]) == campaign.completed_at
    assert datetime.fromisoformat(change["data"]["at"]) == campaign.completed_at
    assert change["id"] != done["id"]
    assert [r.event_type for r in await rows_of(changes, pk)] == [CHANGED] * 4  # CREATE SEND_NOW CLAIM COMPLETE
    only = await rows_of(completions)
    assert [(r.event_type, r.event_id) for r in only] == [(COMPLETED, done["id"])]  # the same event


async def test_a_test_event_is_recorded_for_its_endpoint_even_when_disabled(api: Api) -> None:
    hook = await endpoint(api, enabled=False)
    row = await webhook_outbox.record_test(hook, api.principal.workspace_id)
    body = event(row)
    assert (row.event_type, row.campaign_id, row.status, row.event_id) == ("webhook.test", None, D.PENDING, body["id"])
    assert body["id"].startswith("evt_") and "message" in body["data"]
    assert body["workspaceId"] == to_global_id("Workspace", api.principal.workspace_id)


# --- what is due -------------------------------------------------------------------


async def deliver(delivery_id: int, status: wh.DeliveryStatus = D.DELIVERED) -> None:
    now = later()
    claimed = await webhook_outbox.claim(delivery_id, now, HOLD)
    assert claimed is not None
    assert await webhook_outbox.finish(claimed, status, now=now, status_code=200, error=None)


async def test_only_the_oldest_pending_delivery_of_a_campaign_is_due_per_endpoint(api: Api) -> None:
    first, second = await endpoint(api, [CHANGED]), await endpoint(api, [CHANGED])
    one = await created(api, "One")
    for action in (A.SCHEDULE, A.UNSCHEDULE):
        await apply_action(api.principal, one, action, scheduled_at=later(hours=1))
    other = await created(api, "Other")
    a = [r.id for r in await rows_of(first, one)]
    b = [r.id for r in await rows_of(second, one)]
    (a_other,) = [r.id for r in await rows_of(first, other)]
    (b_other,) = [r.id for r in await rows_of(second, other)]
    assert sorted(await due_for(first, second)) == sorted([a[0], b[0], a_other, b_other])
    await deliver(a[0])
    assert sorted(await due_for(first, second)) == sorted([a[1], b[0], a_other, b_other])
    await deliver(a[1], D.FAILED)  # a failed one no longer holds the next back
    assert sorted(await due_for(first, second)) == sorted([a[2], b[0], a_other, b_other])
    await deliver(a[2])
    await deliver(a_other)
    assert sorted(await due_for(first)) == []


async def test_due_is_oldest_first(api: Api) -> None:
    hook = await endpoint(api, [CHANGED])
    pks = [await created(api, f"C{i}") for i in range(3)]
    heads = [(await rows_of(hook, pk))[0].id for pk in pks]
    await WebhookDelivery.filter(id=heads[0]).update(next_attempt_at=later(seconds=-30))  # a retry, due long ago
    assert await due_for(hook) == [heads[0], heads[1], heads[2]]
    found = await webhook_outbox.due(later(seconds=1), 2)
    assert len(found) == 2  # the limit holds


async def test_a_head_in_flight_or_waiting_to_retry_holds_its_campaign_back(api: Api) -> None:
    hook = await endpoint(api, [CHANGED])
    pk = await created(api)
    await apply_action(api.principal, pk, A.SCHEDULE, scheduled_at=later(hours=1))
    head, nxt = (r.id for r in await rows_of(hook))
    now = later(seconds=1)
    claimed = await webhook_outbox.claim(head, now, HOLD)
    assert claimed is not None
    assert await due_for(hook, now=now) == []  # in flight: neither it nor the next
    assert await due_for(hook, now=now + HOLD) == [head]  # its claim expired: tried again
    retry_at = now + timedelta(minutes=5)
    assert await webhook_outbox.finish(
        claimed, D.PENDING, now=now, status_code=500, error="HTTP 500: no", next_attempt_at=retry_at
    )
    assert await due_for(hook, now=now) == []  # waiting to retry, and the next waits behind it
    assert await due_for(hook, now=retry_at) == [head]
    assert nxt not in await due_for(hook, now=retry_at + timedelta(days=1))


async def test_a_delivery_is_not_due_before_its_time(api: Api) -> None:
    hook = await endpoint(api, [CHANGED])
    pk = await created(api)
    (row,) = await rows_of(hook, pk)
    assert await due_for(hook, now=row.created_at - timedelta(seconds=1)) == []
    assert await due_for(hook, now=row.created_at) == [row.id]


async def test_test_events_are_never_held_back_and_are_due_for_a_disabled_endpoint(api: Api) -> None:
    hook = await endpoint(api, [CHANGED])
    pk = await created(api)
    (head,) = await rows_of(hook, pk)
    now = later(seconds=1)
    assert await webhook_outbox.claim(head.id, now, HOLD) is not None  # a campaign event in flight
    tests = [(await webhook_outbox.record_test(hook, api.principal.workspace_id)).id for _ in range(2)]
    assert sorted(await due_for(hook, now=later(seconds=2))) == tests  # both at once, not in line
    await endpoints.update_endpoint(api.principal, hook, enabled=False)
    later_pk = await created(api, "While disabled")  # not recorded: the endpoint is disabled
    assert await rows_of(hook, later_pk) == []
    after_hold = now + HOLD
    assert sorted(await due_for(hook, now=after_hold)) == tests  # the campaign's head waits
    await endpoints.update_endpoint(api.principal, hook, enabled=True)
    assert sorted(await due_for(hook, now=after_hold)) == sorted([head.id, *tests])


# --- claims and outcomes -----------------------------------------------------------


async def test_of_dispatchers_claiming_one_delivery_at_once_exactly_one_gets_it(api: Api) -> None:
    hook = await endpoint(api, [CHANGED])
    pk = await created(api)
    (row,) = await rows_of(hook, pk)
    view = (await endpoints.list_endpoints(api.principal.workspace_id))[0]
    now = later()
    claims = await asyncio.gather(*(webhook_outbox.claim(row.id, now, HOLD) for _ in range(8)))
    won = [c for c in claims if c is not None]
    assert len(won) == 1
    (claimed,) = won
    stored = await WebhookDelivery.get(id=row.id)
    assert stored.attempts == claimed.attempt == 1
    assert stored.locked_until == now + HOLD and stored.last_attempt_at == now
    secret = (await WebhookEndpoint.get(id=hook)).secret
    assert (claimed.endpoint_id, claimed.url, claimed.secret) == (hook, view.url, secret)
    assert (claimed.event_id, claimed.event_type, claimed.body) == (row.event_id, CHANGED, row.body)
    assert claimed.created_at == row.created_at
    assert await webhook_outbox.claim(row.id, now + HOLD - timedelta(seconds=1), HOLD) is None  # still held
    again = await webhook_outbox.claim(row.id, now + HOLD, HOLD)
    assert again is not None and again.attempt == 2  # the hold expired: a new attempt
    assert await webhook_outbox.claim(987_654_321, now, HOLD) is None


async def test_a_finished_delivery_cannot_be_claimed(api: Api) -> None:
    hook = await endpoint(api, [CHANGED])
    pk = await created(api)
    (row,) = await rows_of(hook, pk)
    await deliver(row.id)
    assert await webhook_outbox.claim(row.id, later(hours=1), HOLD) is None
    stored = await WebhookDelivery.get(id=row.id)
    assert (stored.status, stored.attempts, stored.last_status_code, stored.locked_until) == (D.DELIVERED, 1, 200, None)
    assert stored.delivered_at is not None


async def test_an_outcome_is_written_only_by_the_current_claim(api: Api) -> None:
    hook = await endpoint(api, [CHANGED])
    pk = await created(api)
    (row,) = await rows_of(hook, pk)
    now = later()
    stale = await webhook_outbox.claim(row.id, now, HOLD)
    assert stale is not None
    # its dispatcher paused past its hold; another one claims it again
    current = await webhook_outbox.claim(row.id, now + HOLD + timedelta(seconds=1), HOLD)
    assert current is not None and (stale.attempt, current.attempt) == (1, 2)
    before = await WebhookDelivery.get(id=row.id)
    assert not await webhook_outbox.finish(stale, D.DELIVERED, now=now, status_code=200, error=None)
    assert not await webhook_outbox.finish(stale, D.FAILED, now=now, status_code=500, error="HTTP 500: no")
    untouched = await WebhookDelivery.get(id=row.id)
    fields = ("status", "attempts", "locked_until", "last_status_code", "last_error", "delivered_at", "next_attempt_at")
    assert [getattr(untouched, f) for f in fields] == [getattr(before, f) for f in fields]
    assert untouched.status is D.PENDING and untouched.locked_until is not None
    retry_at = now + timedelta(minutes=2)
    assert await webhook_outbox.finish(
        current, D.PENDING, now=now, status_code=503, error="HTTP 503: busy", next_attempt_at=retry_at
    )
    retried = await WebhookDelivery.get(id=row.id)
    assert (retried.status, retried.attempts, retried.locked_until, retried.next_attempt_at) == (
        D.PENDING,
        2,
        None,
        retry_at,
    )
    assert (retried.last_status_code, retried.last_error, retried.delivered_at) == (503, "HTTP 503: busy", None)
    assert not await webhook_outbox.finish(stale, D.DELIVERED, now=now, status_code=200, error=None)
    third = await webhook_outbox.claim(row.id, retry_at, HOLD)
    assert third is not None and third.attempt == 3
    assert await webhook_outbox.finish(third, D.DELIVERED, now=retry_at, status_code=204, error=None)
    done = await WebhookDelivery.get(id=row.id)
    assert (done.status, done.last_status_code, done.last_error, done.delivered_at) == (
        D.DELIVERED,
        204,
        None,
        retry_at,
    )
    assert not await webhook_outbox.finish(third, D.FAILED, now=retry_at, status_code=500, error="late")


async def test_prune_forgets_finished_deliveries_older_than_the_retention_and_keeps_pending_ones(api: Api) -> None:
    endpoint_id = await endpoint(api, [CHANGED])
    for name in ("a", "b", "c"):
        await api.create_campaign(name=name)
    delivered, failed, pending = await rows_of(endpoint_id)
    await WebhookDelivery.filter(id=delivered.id).update(status=D.DELIVERED)
    await WebhookDelivery.filter(id=failed.id).update(status=D.FAILED)
    await webhook_outbox.prune(delivered.created_at)  # ours are not older than that (others' may be)
    assert len(await rows_of(endpoint_id)) == 3
    assert await webhook_outbox.prune(later(seconds=1)) >= 2
    assert [r.id for r in await rows_of(endpoint_id)] == [pending.id]
