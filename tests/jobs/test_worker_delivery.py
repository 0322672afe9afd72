"""Local-time sending and send windows through the real worker (in this process, with
the real database and Redis; the provider is the scripted fake of our Provider port),
on the business clock the tests move (runtime/clock.py). Each call records the business
time it started at, so the tests can say when, in each recipient's zone, it went out.

The sweep is called directly where a deployment's cron would run it (it wakes what the
deferred jobs, set by the real clock, would wake only hours later)."""

from __future__ import annotations

import time as time_module
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from operator import contains
from types import ModuleType
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from domain.ids import expect_id
from domain.lifecycle import Action, CampaignStatus
from domain.sending import SendRequest, SendResult
from jobs.sweep import start_scheduled, sweep
from models import Campaign, Message
from runtime import clock
from runtime.keys import QUEUE, run_job_id, wake_job_id
from services.transitions import apply_action
from settings import Settings
from tests.conftest import Api
from tests.jobs.memory import ScriptedProvider, accept
from tests.jobs.test_worker import Running, by_status, fast, running_worker  # noqa: F401 (fixture)
from tests.services.test_receipts import assert_consistent
from tests.waiting import until

S = CampaignStatus
#: these tests run the sweep, which runs every due recurring schedule of the database
pytestmark = pytest.mark.usefixtures("quiet_schedules")

#: one recipient per zone, as their numbers tell it (domain/timezones.py)
FIVE_ZONES = {
    "+33612345601": "Europe/Paris",
    "+12125550101": "America/New_York",
    "+81312345601": "Asia/Tokyo",
    "+61412345601": "Australia/Sydney",
    "+14155550101": "America/Los_Angeles",
}

SCHEDULE_LOCAL = """
mutation($id: ID!, $date: String!, $time: String!) {
  scheduleCampaignInLocalTime(id: $id, date: $date, time: $time) {
    campaign { status scheduledAt localSendTime { date time } }
    userErrors { field message code }
  }
}"""
PAUSE = "mutation($id: ID!) { pauseCampaign(id: $id) { campaign { status } userErrors { message } } }"
CANCEL = "mutation($id: ID!) { cancelCampaign(id: $id) { campaign { status stats { cancelled pending } } userErrors { message } } }"
VIEW = """
query($id: ID!) {
  campaign(id: $id) {
    status statusReason nextSendAt
    waiting { reason timeZone count until }
    sendPlan { at count }
    sendWindow { days start end timeZone description }
  }
}"""


class Recorder:
    """A provider script that notes the business time each message's call started."""

    def __init__(self) -> None:
        self.at: dict[str, datetime] = {}

    def __call__(self, request: SendRequest, attempt: int) -> SendResult:
        self.at.setdefault(request.phone, clock.now())
        return accept(request, attempt)


@pytest_asyncio.fixture
async def worker(fast: Settings, business_clock: ModuleType) -> AsyncIterator[tuple[Running, Recorder]]:  # noqa: F811
    recorder = Recorder()
    async with running_worker(fast, ScriptedProvider(script=recorder)) as running:
        yield running, recorder


async def _campaign(api: Api, phones: list[str], **fields: object) -> tuple[str, int]:
    view = await api.create_campaign(**fields)
    report = await api.add(view["id"], *[(p, {"name": "Ada"}) for p in phones])
    assert report["invalid"] == [], report
    return view["id"], expect_id(view["id"], "Campaign")


async def _waiting(pk: int) -> bool:
    c = await Campaign.get(id=pk)
    return c.status is S.PROCESSING and c.next_send_at is not None and c.lease_owner is None


async def _deferred_job(running: Running, pk: int) -> None:
    """What the campaign's deferred job does once the business clock reaches its time:
    arq defers it by the real clock, hours here. The start job is the API's (its Redis
    is the session's, not this worker's): run as the job runs; a wake-up job is this
    worker's: made due now in its queue."""
    c = await Campaign.get(id=pk)
    if c.status is S.SCHEDULED:
        assert await start_scheduled(running.worker.ctx, pk, c.schedule_token or "") == "started"
        return
    assert c.next_send_at is not None and c.next_send_at <= clock.now()
    job_id = wake_job_id(pk, c.version, c.lease_fence, c.next_send_at.timestamp())
    redis = running.runner.redis
    assert await redis.zscore(QUEUE, job_id) is not None, f"no deferred job {job_id}"
    await redis.zadd(QUEUE, {job_id: int(time_module.time() * 1000)})


async def _act(api: Api, running: Running, pk: int, action: Action) -> Campaign:
    """A user's action, its run job enqueued on this worker's Redis (the API's effects
    use the session's)."""
    done = await apply_action(api.principal, pk, action, after=running.runner.effects.after_transition)
    return done.campaign


async def _swept(running: Running, pk: int) -> bool:
    """The sweep, as its cron runs it, until it re-queued this campaign (it leaves alone
    a campaign that changed within its last few seconds)."""
    await sweep(running.worker.ctx)
    c = await Campaign.get(id=pk)
    if c.lease_owner is not None or c.status is S.COMPLETED:
        return True
    return await running.runner.redis.zscore(QUEUE, run_job_id(pk, c.version, c.lease_fence)) is not None


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 12, 3),
        date(2026, 3, 8),  # America/New_York springs forward
        date(2026, 3, 29),  # Europe/Paris springs forward
        date(2026, 10, 25),  # Europe/Paris falls back
        date(2026, 11, 1),  # America/New_York falls back
    ],
)
async def test_recipients_in_five_zones_each_receive_it_at_nine_in_their_own(
    api: Api, worker: tuple[Running, Recorder], day: date
) -> None:
    running, recorder = worker
    gid, pk = await _campaign(api, list(FIVE_ZONES))
    clock.travel_to(datetime.combine(day - timedelta(days=1), time(12, 0), UTC))
    data = await api.gql(SCHEDULE_LOCAL, id=gid, date=day.isoformat(), time="09:00")
    done = data["scheduleCampaignInLocalTime"]
    assert done["userErrors"] == [] and done["campaign"]["status"] == "SCHEDULED", done
    instants = sorted(
        (datetime.combine(day, time(9, 0), ZoneInfo(z)).astimezone(UTC), p) for p, z in FIVE_ZONES.items()
    )
    assert datetime.fromisoformat(done["campaign"]["scheduledAt"]) == instants[0][0]
    for k, (at, phone) in enumerate(instants):
        clock.travel_to(at + timedelta(seconds=1))
        await _deferred_job(running, pk)  # the start (first), then the wake-ups
        await until(partial(contains, recorder.at, phone), what=f"the call to {phone}", timeout=15)
        if k < len(instants) - 1:
            await until(lambda: _waiting(pk), what="waiting for the next zone", timeout=15)
            c = await Campaign.get(id=pk)
            assert c.next_send_at == instants[k + 1][0]
            zone_name = FIVE_ZONES[instants[k + 1][1]]
            assert c.status_reason is not None and f"Waiting until 09:00 {zone_name}" in c.status_reason
    await until(lambda: _completed(pk), what="completed", timeout=15)
    for phone, zone_name in FIVE_ZONES.items():
        local = recorder.at[phone].astimezone(ZoneInfo(zone_name))
        assert (local.date(), local.hour, local.minute) == (day, 9, 0), (phone, local)
    assert await by_status(pk) == {"SENT": 5}
    await assert_consistent(pk)


async def _completed(pk: int) -> bool:
    return (await Campaign.get(id=pk)).status is S.COMPLETED


async def test_a_window_that_closes_mid_send_stops_the_calls_and_reopens_the_next_morning(
    api: Api, worker: tuple[Running, Recorder]
) -> None:
    running, recorder = worker
    paris = ZoneInfo("Europe/Paris")
    window = {"days": ["MON", "TUE", "WED", "THU", "FRI"], "start": "09:00", "end": "17:00", "timeZone": "Europe/Paris"}
    phones = [f"+336123456{i:02d}" for i in range(40)]
    gid, pk = await _campaign(api, phones, sendWindow=window, sendRate=10)
    closing = datetime(2026, 12, 4, 17, 0, tzinfo=paris)  # a Friday: it reopens on Monday
    clock.travel_to(closing - timedelta(seconds=1.5))
    await _act(api, running, pk, Action.SEND_NOW)
    await until(lambda: _waiting(pk), what="waiting for the window", timeout=20)
    sent_before = len(recorder.at)
    assert 0 < sent_before < 40
    assert all(at < closing for at in recorder.at.values()), [
        str(a) for a in sorted(recorder.at.values()) if a >= closing
    ]
    view = (await api.gql(VIEW, id=gid))["campaign"]
    monday = datetime(2026, 12, 7, 9, 0, tzinfo=paris)
    assert datetime.fromisoformat(view["nextSendAt"]) == monday
    assert view["waiting"] == [
        {
            "reason": "WINDOW",
            "timeZone": "Europe/Paris",
            "count": 40 - sent_before,
            "until": monday.astimezone(UTC).isoformat(),
        }
    ]
    assert "Waiting until 09:00 Europe/Paris (2026-12-07)" in view["statusReason"]
    assert view["sendWindow"]["timeZone"] == "Europe/Paris" and view["sendPlan"][-1]["count"] == 40 - sent_before
    clock.travel_to(monday + timedelta(seconds=1))
    # the wake job deferred to Monday is days away on the real clock: the sweep wakes it
    await until(lambda: _swept(running, pk), what="the sweep woke it", timeout=15, every=0.5)
    await until(lambda: _completed(pk), what="completed on Monday", timeout=20)
    # the sweep also wakes other tests' leftovers in the shared database: count ours
    mine = {p: at for p, at in recorder.at.items() if p in set(phones)}
    assert len(mine) == 40
    late = [at for at in mine.values() if at >= closing]
    assert late and all(at >= monday for at in late)
    assert await by_status(pk) == {"SENT": 40}
    await assert_consistent(pk)


async def test_pause_resume_and_cancel_while_it_waits(api: Api, worker: tuple[Running, Recorder]) -> None:
    running, recorder = worker
    window = {"days": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"], "start": "09:00", "end": "10:00"}
    phones = [f"+336123457{i:02d}" for i in range(6)]
    gid, pk = await _campaign(api, phones, sendWindow=window, timeZone="Europe/Paris")
    clock.travel_to(datetime(2026, 12, 3, 20, 0, tzinfo=ZoneInfo("Europe/Paris")))  # closed until 09:00
    await _act(api, running, pk, Action.SEND_NOW)
    await until(lambda: _waiting(pk), what="waiting for the window", timeout=15)
    assert recorder.at == {}
    paused = (await api.gql(PAUSE, id=gid))["pauseCampaign"]
    assert paused["userErrors"] == [] and paused["campaign"]["status"] == "PAUSED"
    c = await Campaign.get(id=pk)
    assert c.next_send_at is None and c.status_reason is None
    assert (await _act(api, running, pk, Action.RESUME)).status is S.QUEUED
    await until(lambda: _waiting(pk), what="waiting again after the resume", timeout=15)
    assert recorder.at == {}
    cancelled = (await api.gql(CANCEL, id=gid))["cancelCampaign"]
    assert cancelled["campaign"]["status"] == "CANCELLED"
    assert cancelled["campaign"]["stats"] == {"cancelled": 6, "pending": 0}
    clock.travel_to(datetime(2026, 12, 4, 9, 0, 1, tzinfo=ZoneInfo("Europe/Paris")))
    await sweep(running.worker.ctx)
    assert not set(recorder.at) & set(phones)  # the sweep may wake leftovers of other tests, not this one
    assert await Message.filter(campaign_id=pk, status="CANCELLED").count() == 6
    await assert_consistent(pk)
