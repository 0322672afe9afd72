"""services/webhooks.py on the real database: endpoints as a workspace's resource (the
secret shown once, every bad input reported at once, the per-workspace limit, also
under concurrent creates), updates of only what is given, rotation, deletion with the
delivery log, test events, and the log itself. Another workspace's endpoint is never
found."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain import webhooks as wh
from domain.errors import InvalidInput, LimitExceeded, NotFound, ValidationFailed
from domain.ids import expect_id
from domain.lifecycle import Action
from models import WebhookDelivery, WebhookEndpoint
from services import webhook_outbox
from services import webhooks as endpoints
from services.transitions import apply_action
from tests.conftest import Api

CHANGED, COMPLETED = wh.EventType.CAMPAIGN_STATUS_CHANGED.value, wh.EventType.CAMPAIGN_COMPLETED.value
ALL = [CHANGED, COMPLETED]
URL = "https://example.com/hooks/campaigns"
D = wh.DeliveryStatus


async def create(api: Api, url: str = URL, events: list[str] = ALL, **options: Any) -> endpoints.EndpointView:
    view, _ = await endpoints.create_endpoint(api.principal, url, events, **options)
    return view


async def count(api: Api) -> int:
    return await WebhookEndpoint.filter(workspace_id=api.principal.workspace_id).count()


# --- create ------------------------------------------------------------------------


async def test_create_returns_the_secret_once_and_a_hint_afterwards(api: Api) -> None:
    view, secret = await endpoints.create_endpoint(api.principal, URL, [COMPLETED, CHANGED, CHANGED])
    assert secret.startswith(wh.SECRET_PREFIX) and len(secret) == len(wh.SECRET_PREFIX) + 64
    assert (view.url, view.events, view.enabled) == (
        URL,
        (wh.EventType.CAMPAIGN_STATUS_CHANGED, wh.EventType.CAMPAIGN_COMPLETED),
        True,
    )
    assert view.secret_hint == secret[: len(wh.SECRET_PREFIX) + 4] + "…"
    assert secret not in repr(view) and not hasattr(view, "secret")  # the view never carries it
    (listed,) = await endpoints.list_endpoints(api.principal.workspace_id)
    assert listed == view
    assert (await WebhookEndpoint.get(id=view.id)).secret == secret  # the HMAC key, kept as given
    _, another = await endpoints.create_endpoint(api.principal, URL, ALL)
    assert another != secret  # each endpoint its own


async def test_an_endpoint_may_be_created_disabled(api: Api) -> None:
    view = await create(api, events=[CHANGED], enabled=False)
    assert (view.enabled, view.events) == (False, (wh.EventType.CAMPAIGN_STATUS_CHANGED,))


async def test_a_bad_url_and_bad_events_are_reported_together_and_nothing_is_written(api: Api) -> None:
    with pytest.raises(InvalidInput) as refused:
        await create(api, "ftp://example.com/x", ["campaign.deleted"])
    assert [(e.field, e.code.value) for e in refused.value.errors] == [
        (("url",), "VALIDATION"),
        (("events",), "VALIDATION"),
    ]
    assert "https://" in refused.value.errors[0].message and "campaign.deleted" in refused.value.errors[1].message
    with pytest.raises(ValidationFailed) as one:
        await create(api, URL, [])
    assert not isinstance(one.value, InvalidInput) and one.value.field == ("events",)
    assert await count(api) == 0


async def test_a_private_target_is_refused_unless_allowed(api: Api) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await create(api, "http://169.254.169.254/latest/meta-data/")
    assert refused.value.field == ("url",) and "link-local" in refused.value.message
    assert await count(api) == 0
    view = await create(api, "http://127.0.0.1:8000/hook", allow_private=True)
    assert view.url == "http://127.0.0.1:8000/hook"


async def test_a_workspace_has_at_most_max_endpoints(api: Api, other_api: Api) -> None:
    made = [await create(api, f"{URL}/{i}") for i in range(endpoints.MAX_ENDPOINTS)]
    with pytest.raises(LimitExceeded) as refused:
        await create(api)
    assert refused.value.field == ("url",) and str(endpoints.MAX_ENDPOINTS) in refused.value.message
    assert await count(api) == endpoints.MAX_ENDPOINTS
    await create(other_api)  # the limit is per workspace
    await endpoints.delete_endpoint(api.principal, made[0].id)
    await create(api)  # room again
    assert await count(api) == endpoints.MAX_ENDPOINTS


async def test_concurrent_creates_never_pass_the_limit(api: Api) -> None:
    await create(api)  # rows to lock exist already, and none: both have to hold
    results = await asyncio.gather(
        *(create(api, f"{URL}/{i}") for i in range(endpoints.MAX_ENDPOINTS + 5)), return_exceptions=True
    )
    made = [r for r in results if isinstance(r, endpoints.EndpointView)]
    assert all(isinstance(r, endpoints.EndpointView | LimitExceeded) for r in results), results
    assert len(made) == endpoints.MAX_ENDPOINTS - 1
    assert await count(api) == endpoints.MAX_ENDPOINTS


async def test_concurrent_first_creates_never_pass_the_limit(api: Api) -> None:
    results = await asyncio.gather(
        *(create(api, f"{URL}/{i}") for i in range(endpoints.MAX_ENDPOINTS + 5)), return_exceptions=True
    )
    assert all(isinstance(r, endpoints.EndpointView | LimitExceeded) for r in results), results
    assert sum(isinstance(r, endpoints.EndpointView) for r in results) == endpoints.MAX_ENDPOINTS
    assert await count(api) == endpoints.MAX_ENDPOINTS


# --- update, rotate ----------------------------------------------------------------


async def test_update_changes_only_what_is_given(api: Api) -> None:
    made = await create(api)
    stored = await WebhookEndpoint.get(id=made.id)
    moved = await endpoints.update_endpoint(api.principal, made.id, url=" https://hooks.example.org/in ")
    assert (moved.url, moved.events, moved.enabled) == ("https://hooks.example.org/in", made.events, True)
    assert moved.updated_at > made.updated_at  # updatedAt tells that it changed
    fewer = await endpoints.update_endpoint(api.principal, made.id, events=[COMPLETED])
    assert (fewer.url, fewer.events, fewer.enabled) == (moved.url, (wh.EventType.CAMPAIGN_COMPLETED,), True)
    off = await endpoints.update_endpoint(api.principal, made.id, enabled=False)
    assert (off.url, off.events, off.enabled) == (fewer.url, fewer.events, False)
    same = await endpoints.update_endpoint(api.principal, made.id)
    assert same == off
    after = await WebhookEndpoint.get(id=made.id)
    assert (after.secret, after.created_at) == (stored.secret, stored.created_at)  # never touched by an update


async def test_an_update_is_validated_every_bad_input_at_once_and_changes_nothing(api: Api) -> None:
    made = await create(api)
    with pytest.raises(InvalidInput) as both:
        await endpoints.update_endpoint(api.principal, made.id, url="https://u:p@example.com/", events=["nope"])
    assert [e.field for e in both.value.errors] == [("url",), ("events",)]
    with pytest.raises(ValidationFailed) as private:
        await endpoints.update_endpoint(api.principal, made.id, url="http://10.0.0.1/x", enabled=False)
    assert private.value.field == ("url",)
    with pytest.raises(ValidationFailed) as empty:
        await endpoints.update_endpoint(api.principal, made.id, events=[])
    assert empty.value.field == ("events",)
    (unchanged,) = await endpoints.list_endpoints(api.principal.workspace_id)
    assert unchanged == made
    allowed = await endpoints.update_endpoint(api.principal, made.id, url="http://10.0.0.1/x", allow_private=True)
    assert allowed.url == "http://10.0.0.1/x"


async def test_rotate_makes_a_new_secret_and_forgets_the_old_one(api: Api) -> None:
    view, old = await endpoints.create_endpoint(api.principal, URL, ALL)
    rotated, new = await endpoints.rotate_secret(api.principal, view.id)
    assert new != old and new.startswith(wh.SECRET_PREFIX) and len(new) == len(old)
    assert rotated.secret_hint == new[: len(wh.SECRET_PREFIX) + 4] + "…"
    assert (await WebhookEndpoint.get(id=view.id)).secret == new
    assert (rotated.url, rotated.events, rotated.enabled) == (view.url, view.events, view.enabled)
    assert rotated.updated_at > view.updated_at


# --- another workspace's endpoint --------------------------------------------------


async def test_another_workspaces_endpoint_is_not_found_and_left_as_it_is(api: Api, other_api: Api) -> None:
    theirs = await create(other_api)
    before = await WebhookEndpoint.get(id=theirs.id)
    calls: list[tuple[str, Callable[[int], Awaitable[object]], tuple[str, ...]]] = [
        ("update", lambda pk: endpoints.update_endpoint(api.principal, pk, enabled=False), ("id",)),
        ("rotate", lambda pk: endpoints.rotate_secret(api.principal, pk), ("id",)),
        ("delete", lambda pk: endpoints.delete_endpoint(api.principal, pk), ("id",)),
        ("send_test", lambda pk: endpoints.send_test(api.principal, pk), ("endpointId",)),
    ]
    for name, call, field in calls:
        for pk in (theirs.id, 987_654_321):
            with pytest.raises(NotFound) as refused:
                await call(pk)
            assert (refused.value.code.value, refused.value.field) == ("NOT_FOUND", field), name
    assert await endpoints.list_endpoints(api.principal.workspace_id) == []
    await endpoints.send_test(other_api.principal, theirs.id)
    assert await endpoints.list_deliveries(api.principal.workspace_id, theirs.id) == []  # their log stays theirs
    assert len(await endpoints.list_deliveries(other_api.principal.workspace_id, theirs.id)) == 1
    after = await WebhookEndpoint.get(id=theirs.id)
    assert (after.url, after.events, after.enabled, after.secret) == (
        before.url,
        before.events,
        before.enabled,
        before.secret,
    )


# --- delete, send_test, the log ----------------------------------------------------


async def test_delete_removes_the_endpoint_and_its_deliveries_only(api: Api) -> None:
    gone, kept = await create(api), await create(api)
    campaign = await api.create_campaign()
    await endpoints.send_test(api.principal, gone.id)
    assert await WebhookDelivery.filter(endpoint_id=gone.id).count() == 2  # the creation, the test
    assert await endpoints.delete_endpoint(api.principal, gone.id) == gone.id
    assert not await WebhookEndpoint.filter(id=gone.id).exists()
    assert await WebhookDelivery.filter(endpoint_id=gone.id).count() == 0
    (left,) = await endpoints.list_deliveries(api.principal.workspace_id, kept.id)
    assert left.campaign_id == expect_id(campaign["id"], "Campaign")
    with pytest.raises(NotFound):
        await endpoints.delete_endpoint(api.principal, gone.id)


async def test_send_test_queues_a_test_event_even_for_a_disabled_endpoint(api: Api) -> None:
    made = await create(api, enabled=False)
    sent = await endpoints.send_test(api.principal, made.id)
    assert (sent.endpoint_id, sent.event_type, sent.campaign_id, sent.status, sent.attempts) == (
        made.id,
        wh.EventType.WEBHOOK_TEST.value,
        None,
        D.PENDING,
        0,
    )
    assert sent.next_attempt_at == sent.created_at  # due at once
    body = json.loads(sent.body)
    assert (body["id"], body["type"]) == (sent.event_id, "webhook.test")
    assert await endpoints.list_deliveries(api.principal.workspace_id, made.id) == [sent]


async def test_the_log_is_newest_first_and_filters_by_status_and_campaign(api: Api) -> None:
    made = await create(api, events=[CHANGED])
    first = expect_id((await api.ready_campaign(1, name="First"))["id"], "Campaign")
    second = expect_id((await api.create_campaign(name="Second"))["id"], "Campaign")
    await apply_action(api.principal, first, Action.SCHEDULE, scheduled_at=datetime.now(UTC) + timedelta(hours=1))
    test = await endpoints.send_test(api.principal, made.id)
    log = await endpoints.list_deliveries(api.principal.workspace_id, made.id)
    assert [(d.event_type, d.campaign_id) for d in log] == [
        ("webhook.test", None),
        (CHANGED, first),  # the schedule
        (CHANGED, second),
        (CHANGED, first),  # the creation
    ]
    assert [json.loads(d.body)["data"].get("action") for d in log] == [None, "SCHEDULE", "CREATE", "CREATE"]
    assert [d.id for d in log] == sorted((d.id for d in log), reverse=True)
    # one delivered, one failed: the filters
    now = datetime.now(UTC)
    for row, status, code in ((log[1], D.DELIVERED, 200), (log[2], D.FAILED, 500)):
        claimed = await webhook_outbox.claim(row.id, now, timedelta(seconds=30))
        assert claimed is not None
        assert await webhook_outbox.finish(claimed, status, now=now, status_code=code, error=None)
    by_status = {
        s: [d.id for d in await endpoints.list_deliveries(api.principal.workspace_id, made.id, status=s)] for s in D
    }
    assert by_status == {D.PENDING: [test.id, log[3].id], D.DELIVERED: [log[1].id], D.FAILED: [log[2].id]}
    ours = await endpoints.list_deliveries(api.principal.workspace_id, made.id, campaign_id=first)
    assert [d.id for d in ours] == [log[1].id, log[3].id]
    failed_of_first = await endpoints.list_deliveries(
        api.principal.workspace_id, made.id, campaign_id=first, status=D.FAILED
    )
    assert failed_of_first == []
    delivered = (await endpoints.list_deliveries(api.principal.workspace_id, made.id, status=D.DELIVERED))[0]
    assert (delivered.attempts, delivered.last_status_code, delivered.delivered_at) == (1, 200, now)
    assert delivered.next_attempt_at is None  # only a pending delivery has a next attempt
    assert [d.id for d in await endpoints.list_deliveries(api.principal.workspace_id, made.id, first=2)] == [
        test.id,
        log[1].id,
    ]


@pytest.mark.parametrize("first", [-1, endpoints.MAX_DELIVERIES_PAGE + 1, 10_000])
async def test_the_log_page_size_is_bounded_naming_first(api: Api, first: int) -> None:
    made = await create(api)
    with pytest.raises(ValidationFailed) as refused:
        await endpoints.list_deliveries(api.principal.workspace_id, made.id, first=first)
    assert refused.value.field == ("first",) and str(endpoints.MAX_DELIVERIES_PAGE) in refused.value.message


async def test_the_log_page_size_may_be_zero_to_the_maximum(api: Api) -> None:
    made = await create(api)
    await endpoints.send_test(api.principal, made.id)
    assert await endpoints.list_deliveries(api.principal.workspace_id, made.id, first=0) == []
    page = await endpoints.list_deliveries(api.principal.workspace_id, made.id, first=endpoints.MAX_DELIVERIES_PAGE)
    assert len(page) == 1
