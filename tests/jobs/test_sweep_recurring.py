"""Recurring campaigns end to end with the real in-process worker (jobs/worker.py) and
the sweep (jobs/sweep.py, run directly with the worker's ctx): a daily schedule over
three occurrences, the business clock moved past each slot; each occurrence is created,
launched and sent by the worker, and COMPLETES with its own numbers; the slots passed
while the worker was stopped make ONE occurrence when it is back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import ModuleType

import pytest

from domain.ids import expect_id
from domain.lifecycle import CampaignStatus, ScheduleStatus
from jobs.sweep import sweep
from models import Campaign, Message, RecurringSchedule
from services.recurring import create_schedule
from settings import Settings
from tests.conftest import Api
from tests.e2e.conftest import RedisServer
from tests.jobs.memory import ScriptedProvider
from tests.jobs.test_worker import Running, running_worker
from tests.services.test_receipts import assert_consistent
from tests.waiting import until

#: Monday 7 December 2026, 08:58 in Paris; the schedule runs at 09:00 every day
T0 = datetime(2026, 12, 7, 7, 58, tzinfo=UTC)
SLOT = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)
RECIPIENTS = 4


pytestmark = pytest.mark.usefixtures("quiet_schedules")


@pytest.fixture
def fast(settings: Settings, own_redis: RedisServer) -> Settings:
    """The worker's settings on the test's own Redis, with a short lease."""
    return Settings(
        database_url=settings.database_url,
        redis_url=own_redis.url,
        log_level="WARNING",
        worker_concurrency=5,
        worker_lease_ttl_s=3.0,
        worker_drain_timeout_s=1.0,
    )


@pytest.fixture
def clock(business_clock: ModuleType) -> ModuleType:
    business_clock.travel_to(T0)
    return business_clock


async def completed(pk: int) -> bool:
    return (await Campaign.get(id=pk)).status is CampaignStatus.COMPLETED


async def occurrence_at(running: Running, clock: ModuleType, at: datetime, schedule_id: int) -> Campaign:
    """Move the clock past `at`, sweep once: one occurrence, launched, sent, COMPLETED."""
    clock.travel_to(at + timedelta(seconds=2))
    before = await Campaign.filter(schedule_id=schedule_id).count()
    await sweep(running.worker.ctx)
    assert await Campaign.filter(schedule_id=schedule_id).count() == before + 1
    last = await RecurringSchedule.get(id=schedule_id)
    assert last.last_campaign_id is not None and last.last_error is None
    await until(lambda: completed(last.last_campaign_id or 0), timeout=15, what="the occurrence completed")
    return await Campaign.get(id=last.last_campaign_id)


async def test_three_occurrences_each_complete_and_the_missed_ones_run_once(
    api: Api, fast: Settings, clock: ModuleType
) -> None:
    model = expect_id((await api.ready_campaign(RECIPIENTS, name="Daily digest"))["id"], "Campaign")
    s = await create_schedule(api.principal, model, cron="0 9 * * *", time_zone="Europe/Paris")
    provider = ScriptedProvider()
    made: list[Campaign] = []
    async with running_worker(fast, provider) as running:
        for day in range(2):
            made.append(await occurrence_at(running, clock, SLOT + day * DAY, s.id))
        await sweep(running.worker.ctx)
        assert await Campaign.filter(schedule_id=s.id).count() == 2  # nothing due: nothing made
    # the worker is stopped over two slots (9 and 10 December) ...
    clock.travel_to(SLOT + 3 * DAY + timedelta(hours=1))
    async with running_worker(fast, provider) as running:
        # ... and back: ONE occurrence, for the latest of them, and the next slot is ahead
        made.append(await occurrence_at(running, clock, SLOT + 3 * DAY + timedelta(hours=1), s.id))
        await sweep(running.worker.ctx)
        assert await Campaign.filter(schedule_id=s.id).count() == 3
    assert [c.occurrence_at for c in made] == [SLOT, SLOT + DAY, SLOT + 3 * DAY]
    assert [c.name for c in made] == [
        "Daily digest — 2026-12-07 09:00 Europe/Paris",
        "Daily digest — 2026-12-08 09:00 Europe/Paris",
        "Daily digest — 2026-12-10 09:00 Europe/Paris",
    ]
    for c in made:  # each its own campaign, with its own numbers
        counters = await assert_consistent(c.id)
        assert (c.total, counters["sent"], counters["pending"]) == (RECIPIENTS, RECIPIENTS, 0)
    phones = await Message.filter(campaign_id=model).order_by("phone").values_list("phone", flat=True)
    for c in made:
        assert await Message.filter(campaign_id=c.id).order_by("phone").values_list("phone", flat=True) == phones
    sent_ids = sorted(call.message_id for call in provider.calls)
    mine = sorted(await Message.filter(campaign_id__in=[c.id for c in made]).values_list("id", flat=True))
    assert [i for i in sent_ids if i in set(mine)] == mine  # every message of theirs sent exactly once
    s = await RecurringSchedule.get(id=s.id)
    assert (s.status, s.runs) == (ScheduleStatus.ACTIVE, 3)
    assert s.next_run_at == SLOT + 4 * DAY
    assert (await Campaign.get(id=model)).status is CampaignStatus.DRAFT  # the model itself never sent
    assert await Campaign.filter(schedule_id=s.id).count() == 3
