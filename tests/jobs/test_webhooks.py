"""The outbound webhook dispatcher (jobs/webhooks.py) against a real HTTP receiver on
loopback (tests/receiver.py) and the real test database: signatures that the README's
recipe verifies, retries after 500s and timeouts, the order of a campaign's events, the
give-up, the refusal of private targets, claims shared by two dispatchers, and a
campaign that sends at full speed while its receiver hangs."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from arq import ArqRedis

from domain import webhooks as wh
from domain.ids import expect_id
from domain.lifecycle import Action
from jobs.effects import LifecycleEffects
from jobs.webhooks import WebhookDispatcher
from models import WebhookDelivery
from services import webhooks as endpoints
from services.transitions import apply_action
from settings import Settings
from tests.conftest import Api
from tests.e2e.conftest import RedisServer
from tests.jobs.memory import ScriptedProvider
from tests.jobs.test_worker import _completed, running_worker
from tests.receiver import HANG, Received, Receiver, receiver
from tests.waiting import until

README = Path(__file__).resolve().parents[2] / "README.md"
ALL = [e.value for e in wh.SUBSCRIBABLE]
FAST = wh.RetryPolicy(base=timedelta(seconds=0.05), cap=timedelta(seconds=0.2), give_up_after=timedelta(hours=1))


def readme_verify() -> Callable[[str, str, bytes], bool]:
    """The README's verification snippet, run as written."""
    section = README.read_text().split("## Outbound webhooks", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "the README's webhook section has a Python snippet"
    scope: dict[str, Any] = {}
    exec(code.group(1), scope)
    return scope["verify"]  # type: ignore[no-any-return]


@asynccontextmanager
async def dispatching(**options: Any) -> AsyncIterator[WebhookDispatcher]:
    settings: dict[str, Any] = {"allow_private": True, "timeout_s": 2.0, "policy": FAST, "poll_s": 0.05} | options
    dispatcher = WebhookDispatcher(**settings)
    await dispatcher.start()
    try:
        yield dispatcher
    finally:
        await dispatcher.close()


async def endpoint(api: Api, url: str, events: list[str] = ALL) -> tuple[int, str]:
    view, secret = await endpoints.create_endpoint(api.principal, url, events, allow_private=True)
    return view.id, secret


async def deliveries(endpoint_id: int) -> list[WebhookDelivery]:
    return await WebhookDelivery.filter(endpoint_id=endpoint_id).order_by("id")


async def settled(endpoint_id: int, n: int) -> bool:
    rows = await deliveries(endpoint_id)
    return len(rows) == n and all(r.status is not wh.DeliveryStatus.PENDING for r in rows)


def statuses(hook: Receiver) -> list[tuple[str | None, str]]:
    """(from, to) of each distinct status_changed event received, in arrival order."""
    seen: list[str] = []
    out = []
    for event in hook.events(wh.EventType.CAMPAIGN_STATUS_CHANGED.value):
        if event["id"] not in seen:
            seen.append(event["id"])
            out.append((event["data"]["from"], event["data"]["to"]))
    return out


async def test_a_status_change_is_posted_signed_and_the_readme_recipe_verifies_it(api: Api) -> None:
    verify = readme_verify()
    async with receiver() as hook:
        endpoint_id, secret = await endpoint(api, hook.url)
        campaign = await api.ready_campaign(2)
        await apply_action(api.principal, expect_id(campaign["id"], "Campaign"), Action.SEND_NOW)
        async with dispatching():
            await until(lambda: settled(endpoint_id, 2), what="both events delivered")
    first, second = hook.received
    for request in hook.received:
        header = request.headers[wh.SIGNATURE_HEADER.lower()]
        assert verify(secret, header, request.body)
        assert not verify(secret, header, request.body + b" ")  # the bytes are what is signed
        assert not verify("whsec_other", header, request.body)
        assert wh.verify(secret, header, request.body, time.time())
        assert request.headers["content-type"] == "application/json"
        assert request.headers[wh.EVENT_ID_HEADER.lower()] == request.event["id"]
        assert request.headers[wh.ATTEMPT_HEADER.lower()] == "1"
    assert first.event["type"] == "campaign.status_changed"
    assert first.event["data"] | {"at": None} == {
        "campaignId": campaign["id"],
        "name": campaign["name"],
        "from": None,
        "to": "DRAFT",
        "action": "CREATE",
        "actor": "tester",
        "reason": None,
        "at": None,
    }
    assert (second.event["data"]["from"], second.event["data"]["to"], second.event["data"]["action"]) == (
        "DRAFT",
        "QUEUED",
        "SEND_NOW",
    )
    assert first.event["workspaceId"] == second.event["workspaceId"] and first.event["id"] != second.event["id"]
    rows = await deliveries(endpoint_id)
    assert [(r.status, r.attempts, r.last_status_code, r.last_error) for r in rows] == [
        (wh.DeliveryStatus.DELIVERED, 1, 200, None)
    ] * 2


async def test_500s_are_retried_with_growing_delays_under_the_same_event_id(api: Api) -> None:
    async with receiver(script=[500, 503, 500]) as hook:
        endpoint_id, _ = await endpoint(api, hook.url, [wh.EventType.CAMPAIGN_STATUS_CHANGED.value])
        await api.create_campaign()
        async with dispatching():
            await until(lambda: settled(endpoint_id, 1), what="delivered after three failures")
    assert len(hook.received) == 4
    assert len(set(hook.ids())) == 1  # one event, four attempts
    assert [r.headers[wh.ATTEMPT_HEADER.lower()] for r in hook.received] == ["1", "2", "3", "4"]
    gaps = [b.at - a.at for a, b in zip(hook.received, hook.received[1:], strict=False)]
    assert gaps[0] >= 0.05 * 0.8 and gaps[1] >= 0.1 * 0.8  # base, then doubled (±20% jitter)
    (row,) = await deliveries(endpoint_id)
    assert (row.status, row.attempts, row.last_status_code) == (wh.DeliveryStatus.DELIVERED, 4, 200)


async def test_a_receiver_that_does_not_answer_in_time_is_retried(api: Api) -> None:
    async with receiver(script=[HANG]) as hook:
        endpoint_id, _ = await endpoint(api, hook.url)
        await api.create_campaign()
        async with dispatching(timeout_s=0.3):
            await until(
                lambda: WebhookDelivery.filter(
                    endpoint_id=endpoint_id, attempts=1, last_error__not_isnull=True
                ).exists(),
                what="the first attempt timed out",
            )
            (row,) = await deliveries(endpoint_id)
            assert row.status is wh.DeliveryStatus.PENDING and row.last_status_code is None
            assert row.last_error == "no answer within 0.3 s"
            await until(lambda: settled(endpoint_id, 1), what="delivered on the retry")
    (row,) = await deliveries(endpoint_id)
    assert (row.status, row.attempts) == (wh.DeliveryStatus.DELIVERED, 2)


async def test_a_campaigns_events_arrive_in_order_while_one_is_retried_and_others_do_not_wait(api: Api) -> None:
    refused: list[str] = []

    def first_create_fails_three_times(request: Received) -> int | None:
        event = request.event
        if event["data"]["campaignId"] == first["id"] and event["data"]["action"] == "CREATE" and len(refused) < 3:
            refused.append(event["id"])
            return 500
        return None

    first: dict[str, Any] = {}
    async with receiver(rule=first_create_fails_three_times) as hook:
        endpoint_id, _ = await endpoint(api, hook.url)
        first.update(await api.ready_campaign(1))
        pk = expect_id(first["id"], "Campaign")
        other = await api.create_campaign(name="Other")
        later = time_in(hours=2)
        for action in (Action.SCHEDULE, Action.UNSCHEDULE, Action.SCHEDULE, Action.UNSCHEDULE):
            await apply_action(api.principal, pk, action, scheduled_at=later)
        async with dispatching():
            await until(lambda: settled(endpoint_id, 6), what="every event delivered")
    ours = [e for e in hook.events() if e["data"]["campaignId"] == first["id"]]
    assert [(e["data"]["to"], e["data"]["action"]) for e in ours] == [("DRAFT", "CREATE")] * 4 + [
        ("SCHEDULED", "SCHEDULE"),
        ("DRAFT", "UNSCHEDULE"),
        ("SCHEDULED", "SCHEDULE"),
        ("DRAFT", "UNSCHEDULE"),
    ]
    # the other campaign's event went while the first one's head was being retried
    arrival = [e["data"]["campaignId"] for e in hook.events()]
    assert arrival.index(other["id"]) < arrival.index(first["id"], 3)


def time_in(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


async def test_a_delivery_is_failed_once_its_retry_window_is_over(api: Api) -> None:
    short = wh.RetryPolicy(
        base=timedelta(seconds=0.05), cap=timedelta(seconds=0.1), give_up_after=timedelta(seconds=0.5)
    )
    async with receiver(default=500) as hook:
        endpoint_id, _ = await endpoint(api, hook.url)
        await api.create_campaign()
        async with dispatching(policy=short):
            await until(lambda: settled(endpoint_id, 1), what="given up")
    (row,) = await deliveries(endpoint_id)
    assert row.status is wh.DeliveryStatus.FAILED and row.last_status_code == 500
    assert row.attempts == len(hook.received) >= 3 and row.last_error == "HTTP 500: no"
    # no attempt was scheduled past the window (one scheduled inside it may start a poll late)
    assert (row.last_attempt_at - row.created_at) < timedelta(seconds=0.5 + 0.3)  # type: ignore[operator]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"], ids=["ip-literal", "name"])
async def test_private_targets_are_refused_at_delivery_unless_allowed(api: Api, host: str) -> None:
    async with receiver() as hook:
        url = hook.url.replace("127.0.0.1", host)
        endpoint_id, _ = await endpoint(api, url)  # saved while allowed; the worker is not
        await api.create_campaign()
        async with dispatching(allow_private=False):
            await until(
                lambda: WebhookDelivery.filter(endpoint_id=endpoint_id, last_error__not_isnull=True).exists(),
                what="an attempt",
            )
            (row,) = await deliveries(endpoint_id)
            assert row.last_error is not None and "refused" in row.last_error and "loopback" in row.last_error
            assert row.last_status_code is None
        assert hook.received == []


async def test_two_dispatchers_deliver_every_event_once_between_them(api: Api) -> None:
    async with receiver() as hook:
        endpoint_id, _ = await endpoint(api, hook.url)
        for i in range(30):
            await api.create_campaign(name=f"C{i}")
        async with dispatching(), dispatching():
            await until(lambda: settled(endpoint_id, 30), what="all delivered")
    assert sorted(hook.ids()) == sorted(set(hook.ids())) and len(hook.ids()) == 30


async def test_an_attempt_cut_short_by_a_dying_dispatcher_is_made_again_by_another(api: Api) -> None:
    async with receiver(script=[HANG]) as hook:
        endpoint_id, _ = await endpoint(api, hook.url)
        await api.create_campaign()
        async with dispatching(timeout_s=5, claim_margin_s=0.2):
            await until(lambda: len(hook.received) == 1, what="the first attempt is in flight")
        # that dispatcher is gone mid-attempt: its claim holds the row for timeout + margin
        async with dispatching(timeout_s=0.3, claim_margin_s=0.2):
            await until(lambda: settled(endpoint_id, 1), timeout=10, what="delivered by the second")
    (row,) = await deliveries(endpoint_id)
    assert (row.status, row.attempts) == (wh.DeliveryStatus.DELIVERED, 2)
    assert len(set(hook.ids())) == 1


async def test_a_campaign_sends_at_full_speed_while_its_receiver_hangs(
    api: Api, settings: Settings, own_redis: RedisServer, redis: ArqRedis
) -> None:
    worker = Settings(
        database_url=settings.database_url,
        redis_url=own_redis.url,
        log_level="WARNING",
        worker_concurrency=5,
        webhook_allow_private_urls=True,
        webhook_timeout_s=30.0,
    )
    effects = LifecycleEffects(redis)
    async with receiver(default=HANG) as hook:
        endpoint_id, _ = await endpoint(api, hook.url)
        async with running_worker(worker, ScriptedProvider()):
            campaign = await api.ready_campaign(40)
            await until(lambda: len(hook.received) == 1, what="the receiver hangs on the first event")
            started = time.monotonic()
            pk = expect_id(campaign["id"], "Campaign")
            await apply_action(api.principal, pk, Action.SEND_NOW, after=effects.after_transition)
            await until(lambda: _completed(pk), what="completed while the receiver hangs")
            took = time.monotonic() - started
            assert len(hook.received) == 1 and not hook.released.is_set()
            assert took < 10, took  # well within one webhook timeout (30 s): sending never waited
            hook.released.set()
            await until(lambda: settled(endpoint_id, 5), timeout=15, what="every event, once released")
    assert statuses(hook) == [
        (None, "DRAFT"),
        ("DRAFT", "QUEUED"),
        ("QUEUED", "PROCESSING"),
        ("PROCESSING", "COMPLETED"),
    ]
    (done,) = hook.events(wh.EventType.CAMPAIGN_COMPLETED.value)
    assert done["data"]["stats"] == {
        "total": 40,
        "pending": 0,
        "sent": 40,
        "delivered": 0,
        "read": 0,
        "replied": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert hook.events()[-1]["type"] == "campaign.completed"  # after the COMPLETED change
