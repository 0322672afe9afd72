"""Racing mutations: the database enforces the lifecycle table, so concurrent requests
leave exactly one consistent history."""

from __future__ import annotations

import asyncio

from domain.ids import expect_id
from domain.lifecycle import CampaignStatus
from models import Campaign, CampaignEvent, Message
from tests.conftest import Api, phone
from tests.schema.states import campaign_in, mutate

CALLS = {
    "pause": "pauseCampaign(id: $id)",
    "resume": "resumeCampaign(id: $id)",
    "cancel": "cancelCampaign(id: $id)",
}


async def test_twenty_concurrent_pause_cancel_resume_leave_one_history(api: Api) -> None:
    campaign = await campaign_in(api, CampaignStatus.PROCESSING, recipients=50)
    pk = expect_id(campaign["id"], "Campaign")
    before = await Campaign.get(id=pk)
    events_before = await CampaignEvent.filter(campaign_id=pk).count()
    # Pauses and resumes interleaved, cancels late: every request reads PROCESSING
    # at about the same time, so most must lose, re-read and decide again.
    kinds = ["pause", "resume"] * 6 + [
        "pause",
        "cancel",
        "resume",
        "cancel",
        "pause",
        "cancel",
        "resume",
        "cancel",
    ]

    results = await asyncio.gather(*(mutate(api, CALLS[k], id=campaign["id"]) for k in kinds))

    won = [k for k, r in zip(kinds, results, strict=True) if not r["userErrors"]]
    for r in results:
        assert all(e["code"] in ("INVALID_TRANSITION", "CONFLICT") for e in r["userErrors"]), r
    events = await CampaignEvent.filter(campaign_id=pk, id__gt=0).order_by("id")
    new = events[events_before:]
    # one event per winning mutation, and each starts where the previous one ended
    assert len(new) == len(won) >= 1
    assert sorted(e.action for e in new) == sorted(k.upper() for k in won)
    expected_from = before.status
    for event in new:
        assert event.from_status is expected_from, [(e.from_status, e.to_status) for e in new]
        expected_from = event.to_status
    after = await Campaign.get(id=pk)
    assert after.status is expected_from
    assert after.version == before.version + len(new)
    # at most one cancel can win, and nothing follows it
    assert won.count("cancel") <= 1
    if "cancel" in won:
        assert new[-1].to_status is CampaignStatus.CANCELLED
    # counters still equal the rows they count
    assert after.total == await Message.filter(campaign_id=pk).count()
    assert after.cancelled == await Message.filter(campaign_id=pk, status="CANCELLED").count()
    assert after.pending == await Message.filter(campaign_id=pk, status__in=["PENDING", "SENDING"]).count()


async def test_adding_recipients_races_with_send_now(api: Api) -> None:
    """Every recipient is either in the queued campaign or refused: none slip in after."""
    campaign = await api.ready_campaign(5)
    gid = campaign["id"]
    pk = expect_id(gid, "Campaign")
    adds = [api.add(gid, (phone(100 + i), {"name": f"N{i}"})) for i in range(10)]
    send = mutate(api, "sendCampaignNow(id: $id)", id=gid)
    results = await asyncio.gather(*adds, send)
    added = sum(r["added"] for r in results[:-1])
    after = await Campaign.get(id=pk)
    assert after.status is CampaignStatus.QUEUED
    assert after.total == 5 + added == await Message.filter(campaign_id=pk).count()
    for r in results[:-1]:
        assert r["added"] == 1 or r["userErrors"][0]["code"] == "INVALID_TRANSITION"


async def test_edit_racing_schedule_never_edits_a_scheduled_campaign(api: Api) -> None:
    from tests.schema.states import future

    campaign = await api.ready_campaign(2)
    gid = campaign["id"]
    edits = [mutate(api, "updateCampaign(input: $input)", input={"id": gid, "name": f"Name {i}"}) for i in range(8)]
    schedule = mutate(api, "scheduleCampaign(id: $id, scheduledAt: $at)", id=gid, at=future())
    results = await asyncio.gather(*edits, schedule)
    assert results[-1]["userErrors"] == []
    pk = expect_id(gid, "Campaign")
    after = await Campaign.get(id=pk)
    applied = [r for r in results[:-1] if not r["userErrors"]]
    # the stored name is one an edit that succeeded wrote (or the original)
    assert after.name in {r["campaign"]["name"] for r in applied} | {"Spring sale"}
    schedule_version = results[-1]["campaign"]["version"]
    assert after.version == schedule_version  # nothing changed after the schedule
