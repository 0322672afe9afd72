"""Local-time schedules and send windows over the real HTTP API: what they say, and bad
input refused naming the field with nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

from domain.ids import expect_id
from models import Campaign
from tests.conftest import Api

CREATE = """mutation($input: CreateCampaignInput!) {
  createCampaign(input: $input) {
    campaign { id timeZone sendWindow { days start end timeZone description } }
    userErrors { field message code }
  }
}"""
UPDATE = """mutation($input: UpdateCampaignInput!) {
  updateCampaign(input: $input) { campaign { sendWindow { start } timeZone } userErrors { field message code } }
}"""
SCHEDULE_LOCAL = """mutation($id: ID!, $date: String!, $time: String!) {
  scheduleCampaignInLocalTime(id: $id, date: $date, time: $time) {
    campaign { status scheduledAt localSendTime { date time } sendPlan { at count } }
    userErrors { field message code }
  }
}"""
RESCHEDULE_LOCAL = """mutation($id: ID!, $date: String!, $time: String!) {
  rescheduleCampaignInLocalTime(id: $id, date: $date, time: $time) {
    campaign { status scheduledAt } userErrors { field message code }
  }
}"""
WINDOW = {"days": ["MON", "TUE"], "start": "09:00", "end": "20:00"}


async def test_a_window_and_a_zone_are_saved_and_shown(api: Api) -> None:
    data = await api.gql(CREATE, input={"name": "n", "body": "b", "timeZone": "Europe/Paris", "sendWindow": WINDOW})
    done = data["createCampaign"]
    assert done["userErrors"] == []
    assert done["campaign"]["timeZone"] == "Europe/Paris"
    assert done["campaign"]["sendWindow"] == {
        "days": ["MON", "TUE"],
        "start": "09:00",
        "end": "20:00",
        "timeZone": None,
        "description": "MON, TUE 09:00-20:00 (each recipient's time zone)",
    }
    gid = done["campaign"]["id"]
    removed = await api.gql(UPDATE, input={"id": gid, "sendWindow": None})
    assert removed["updateCampaign"]["campaign"]["sendWindow"] is None


async def test_bad_zones_and_windows_that_never_open_name_the_field_and_write_nothing(api: Api) -> None:
    before = await Campaign.filter(workspace_id=api.principal.workspace_id).count()
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"timeZone": "Mars/Olympus"}, ["input", "timeZone"]),
        ({"sendWindow": {**WINDOW, "days": []}}, ["input", "sendWindow", "days"]),
        ({"sendWindow": {**WINDOW, "end": "09:00"}}, ["input", "sendWindow", "end"]),
        ({"sendWindow": {**WINDOW, "start": "9h"}}, ["input", "sendWindow", "start"]),
        ({"sendWindow": {**WINDOW, "timeZone": "Nowhere/City"}}, ["input", "sendWindow", "timeZone"]),
    ]
    for given, field in cases:
        data = await api.gql(CREATE, input={"name": "n", "body": "b", **given})
        errors = data["createCampaign"]["userErrors"]
        assert data["createCampaign"]["campaign"] is None
        assert [e["field"] for e in errors] == [field], (given, errors)
        assert errors[0]["code"] == "VALIDATION"
    assert await Campaign.filter(workspace_id=api.principal.workspace_id).count() == before


async def test_a_local_schedule_starts_at_the_earliest_zone_and_plans_each_zone(
    api: Api, business_clock: ModuleType
) -> None:
    view = await api.create_campaign()
    await api.add(view["id"], ("+33612345601", {"name": "A"}), ("+81312345601", {"name": "B"}))
    business_clock.travel_to(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    data = await api.gql(SCHEDULE_LOCAL, id=view["id"], date="2026-12-03", time="09:00")
    done = data["scheduleCampaignInLocalTime"]
    assert done["userErrors"] == []
    tokyo = datetime(2026, 12, 3, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    paris = datetime(2026, 12, 3, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert datetime.fromisoformat(done["campaign"]["scheduledAt"]) == tokyo
    assert done["campaign"]["localSendTime"] == {"date": "2026-12-03", "time": "09:00"}
    assert [(datetime.fromisoformat(p["at"]), p["count"]) for p in done["campaign"]["sendPlan"]] == [
        (tokyo.astimezone(UTC), 1),
        (paris.astimezone(UTC), 1),
    ]


async def test_a_zone_where_the_time_has_passed_gets_it_the_next_day(api: Api, business_clock: ModuleType) -> None:
    view = await api.create_campaign()
    await api.add(view["id"], ("+33612345601", {"name": "A"}), ("+81312345601", {"name": "B"}))
    # 10:00 in Paris: 09:00 has passed there, and in Tokyo (18:00) too: tomorrow for both
    business_clock.travel_to(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    data = await api.gql(SCHEDULE_LOCAL, id=view["id"], date="2026-12-03", time="12:00")
    done = data["scheduleCampaignInLocalTime"]
    assert done["userErrors"] == []
    # 12:00 Paris (11:00 UTC) is still ahead; 12:00 Tokyo (03:00 UTC) passed: Tokyo gets it on the 4th
    plan = [(datetime.fromisoformat(p["at"]), p["count"]) for p in done["campaign"]["sendPlan"]]
    assert plan == [
        (datetime(2026, 12, 3, 11, 0, tzinfo=UTC), 1),
        (datetime(2026, 12, 4, 3, 0, tzinfo=UTC), 1),
    ]


async def test_a_local_time_past_everywhere_or_a_bad_date_is_refused_naming_the_field(
    api: Api, business_clock: ModuleType
) -> None:
    view = await api.create_campaign()
    await api.add(view["id"], ("+33612345601", {"name": "A"}), ("+14155550101", {"name": "B"}))
    business_clock.travel_to(datetime(2026, 12, 4, 12, 0, tzinfo=UTC))  # 04:00 in Los Angeles
    for date_text, time_text, field in [
        ("2026-12-03", "09:00", ["time"]),  # yesterday everywhere
        ("2026-12-04", "03:00", ["time"]),  # 03:00 passed in Paris (13:00) and in Los Angeles (04:00)
        ("2026-13-01", "09:00", ["date"]),
        ("2026-12-05", "9 am", ["time"]),
    ]:
        data = await api.gql(SCHEDULE_LOCAL, id=view["id"], date=date_text, time=time_text)
        done = data["scheduleCampaignInLocalTime"]
        assert [e["field"] for e in done["userErrors"]] == [field], (date_text, time_text, done)
    pk = expect_id(view["id"], "Campaign")
    c = await Campaign.get(id=pk)
    assert c.status.value == "DRAFT" and c.local_send is None and c.scheduled_at is None
    # 05:00 is still ahead in Los Angeles: allowed, Paris gets it the next day
    ok = (await api.gql(SCHEDULE_LOCAL, id=view["id"], date="2026-12-04", time="05:00"))["scheduleCampaignInLocalTime"]
    assert ok["userErrors"] == [] and ok["campaign"]["status"] == "SCHEDULED"
    moved = await api.gql(RESCHEDULE_LOCAL, id=view["id"], date="2026-12-06", time="08:30")
    again = moved["rescheduleCampaignInLocalTime"]
    assert again["userErrors"] == []
    first = datetime.combine(datetime(2026, 12, 6).date(), time(8, 30), ZoneInfo("Europe/Paris"))
    assert datetime.fromisoformat(again["campaign"]["scheduledAt"]) == first
    assert first - datetime.fromisoformat(again["campaign"]["scheduledAt"]) == timedelta(0)
