"""Recurring schedules over the real HTTP API: the mutations, the RecurringSchedule node
and the Campaign fields, bad input naming the field with nothing written, the model's
guards, and the scopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from domain.ids import expect_id, to_global_id
from models import Campaign, RecurringSchedule
from services import recurring
from services.keys import create_key
from tests.conftest import Api

#: Monday 7 December 2026, 08:58 in Paris
T0 = datetime(2026, 12, 7, 7, 58, tzinfo=UTC)
SLOT = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)

SCHEDULE_FIELDS = """
  id cron timeZone startsAt endsAt maxRuns runs status nextRunAt lastRunAt lastError allowedActions version
  campaign { id status }
"""
CREATE = f"""mutation($input: CreateRecurringScheduleInput!) {{
  createRecurringSchedule(input: $input) {{ recurringSchedule {{ {SCHEDULE_FIELDS} }} userErrors {{ field message code }} }}
}}"""
CHANGE = """mutation($id: ID!) {{
  {field}(id: $id) {{ recurringSchedule {{ id status nextRunAt allowedActions }} userErrors {{ field message code }} }}
}}"""
SCHEDULE = f"""query($id: ID!, $count: Int) {{
  recurringSchedule(id: $id) {{ {SCHEDULE_FIELDS} nextOccurrences(count: $count)
    occurrences {{ id name status stats {{ total pending }} occurrenceOf {{ id }} }} }}
}}"""


pytestmark = pytest.mark.usefixtures("quiet_schedules")


@pytest.fixture
def clock(business_clock: ModuleType) -> ModuleType:
    business_clock.travel_to(T0)
    return business_clock


async def create(api: Api, campaign_id: str, **given: Any) -> dict[str, Any]:
    data = await api.gql(
        CREATE, input={"campaignId": campaign_id, "cron": "0 9 * * *", "timeZone": "Europe/Paris"} | given
    )
    return dict(data["createRecurringSchedule"])


async def change(api: Api, field: str, gid: str) -> dict[str, Any]:
    return dict((await api.gql(CHANGE.format(field=field), id=gid))[field])


async def test_a_schedule_is_created_read_and_runs_its_occurrences(api: Api, clock: ModuleType) -> None:
    model = await api.ready_campaign(3, name="Weekly news")
    payload = await create(api, model["id"], maxRuns=10)
    assert payload["userErrors"] == []
    s = payload["recurringSchedule"]
    assert (s["cron"], s["timeZone"], s["status"], s["runs"], s["maxRuns"]) == (
        "0 9 * * *",
        "Europe/Paris",
        "ACTIVE",
        0,
        10,
    )
    assert s["nextRunAt"] == SLOT.isoformat() and s["allowedActions"] == ["PAUSE", "END"]
    assert s["campaign"] == {"id": model["id"], "status": "DRAFT"}
    read = (await api.gql(SCHEDULE, id=s["id"], count=3))["recurringSchedule"]
    assert read["nextOccurrences"] == [(SLOT + d * DAY).isoformat() for d in range(3)] and read["occurrences"] == []
    # two slots pass; the sweep's run_due makes each occurrence
    for day in range(2):
        clock.travel_to(SLOT + day * DAY + timedelta(seconds=2))
        assert len(await recurring.run_due()) == 1
    read = (await api.gql(SCHEDULE, id=s["id"], count=None))["recurringSchedule"]
    assert (read["runs"], read["lastRunAt"] is not None, len(read["nextOccurrences"])) == (2, True, 5)
    names = [o["name"] for o in read["occurrences"]]  # newest first
    assert names == ["Weekly news — 2026-12-08 09:00 Europe/Paris", "Weekly news — 2026-12-07 09:00 Europe/Paris"]
    for o in read["occurrences"]:
        assert (o["status"], o["stats"], o["occurrenceOf"]) == ("QUEUED", {"total": 3, "pending": 3}, {"id": s["id"]})
    on_model = await api.gql(
        "query($id: ID!) { campaign(id: $id) { recurringSchedule { id runs } occurrenceOf { id } } }", id=model["id"]
    )
    assert on_model["campaign"] == {"recurringSchedule": {"id": s["id"], "runs": 2}, "occurrenceOf": None}
    listed = await api.gql(
        "{ recurringSchedules(status: [ACTIVE]) { id } ended: recurringSchedules(status: [ENDED]) { id } }"
    )
    assert listed == {"recurringSchedules": [{"id": s["id"]}], "ended": []}
    node = await api.gql("query($id: ID!) { node(id: $id) { id ... on RecurringSchedule { cron } } }", id=s["id"])
    assert node["node"] == {"id": s["id"], "cron": "0 9 * * *"}


async def test_pause_resume_and_end_over_the_api(api: Api, clock: ModuleType) -> None:
    model = await api.ready_campaign(1)
    gid = (await create(api, model["id"]))["recurringSchedule"]["id"]
    paused = await change(api, "pauseRecurringSchedule", gid)
    assert paused["recurringSchedule"] == {
        "id": gid,
        "status": "PAUSED",
        "nextRunAt": None,
        "allowedActions": ["RESUME", "END"],
    }
    again = await change(api, "pauseRecurringSchedule", gid)
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [("INVALID_TRANSITION", ["id"])]
    assert again["recurringSchedule"]["status"] == "PAUSED"  # the schedule as it is now
    clock.travel_to(SLOT + DAY + timedelta(hours=2))
    resumed = await change(api, "resumeRecurringSchedule", gid)
    assert (resumed["recurringSchedule"]["status"], resumed["recurringSchedule"]["nextRunAt"]) == (
        "ACTIVE",
        (SLOT + 2 * DAY).isoformat(),
    )
    ended = await change(api, "endRecurringSchedule", gid)
    assert ended["recurringSchedule"]["status"] == "ENDED" and ended["recurringSchedule"]["allowedActions"] == []
    gone = await change(api, "endRecurringSchedule", to_global_id("RecurringSchedule", 10**12))
    assert [(e["code"], e["field"]) for e in gone["userErrors"]] == [("NOT_FOUND", ["id"])]


@pytest.mark.parametrize(
    ("given", "fields"),
    [
        ({"cron": "0 9 * *"}, [["input", "cron"]]),
        ({"cron": "every monday"}, [["input", "cron"]]),
        ({"cron": "* 9 * * *"}, [["input", "cron"]]),
        ({"timeZone": "Europe/Pariss"}, [["input", "timeZone"]]),
        ({"cron": "0 9 * * 9", "timeZone": "Mars/Base"}, [["input", "cron"], ["input", "timeZone"]]),
        ({"startsAt": "2026-12-20T00:00:00Z", "endsAt": "2026-12-10T00:00:00Z"}, [["input", "endsAt"]]),
        ({"maxRuns": 0}, [["input", "maxRuns"]]),
        ({"cron": "0 9 * * 0", "endsAt": "2026-12-11T00:00:00Z"}, [["input", "endsAt"]]),  # no Sunday before it
        ({"cron": "0 9 30 2 *"}, [["input", "cron"]]),
    ],
    ids=["fields", "words", "every-minute", "zone", "both", "ends-before-start", "max-runs", "no-slot", "never"],
)
async def test_bad_input_names_the_field_and_writes_nothing(
    api: Api, clock: ModuleType, given: dict[str, Any], fields: list[list[str]]
) -> None:
    model = await api.ready_campaign(1)
    pk = expect_id(model["id"], "Campaign")
    version = (await Campaign.get(id=pk)).version
    payload = await create(api, model["id"], **given)
    assert payload["recurringSchedule"] is None
    assert [e["field"] for e in payload["userErrors"]] == fields
    assert {e["code"] for e in payload["userErrors"]} == {"VALIDATION"}
    assert not await RecurringSchedule.filter(campaign_id=pk).exists()
    assert (await Campaign.get(id=pk)).version == version


async def test_the_model_must_be_a_draft_of_the_workspace(api: Api, other_api: Api, clock: ModuleType) -> None:
    theirs = await other_api.ready_campaign(1)
    missing = await create(api, theirs["id"])
    assert [(e["code"], e["field"]) for e in missing["userErrors"]] == [("NOT_FOUND", ["input", "campaignId"])]
    sent = await api.ready_campaign(1)
    await api.gql("mutation($id: ID!) { sendCampaignNow(id: $id) { userErrors { message } } }", id=sent["id"])
    not_draft = await create(api, sent["id"])
    assert [(e["code"], e["field"]) for e in not_draft["userErrors"]] == [("VALIDATION", ["input", "campaignId"])]
    assert await RecurringSchedule.filter(workspace_id=api.principal.workspace_id).count() == 0


async def test_the_model_of_a_live_schedule_is_not_sent_or_deleted(api: Api, clock: ModuleType) -> None:
    model = await api.ready_campaign(2)
    gid = (await create(api, model["id"]))["recurringSchedule"]["id"]
    send = await api.gql(
        "mutation($id: ID!) { sendCampaignNow(id: $id) { campaign { status } userErrors { field message } } }",
        id=model["id"],
    )
    [error] = send["sendCampaignNow"]["userErrors"]
    assert error["field"] == ["id"] and "model of a recurring schedule" in error["message"]
    delete = "mutation($id: ID!) { deleteCampaign(id: $id) { deletedId userErrors { field message } } }"
    refused = (await api.gql(delete, id=model["id"]))["deleteCampaign"]
    assert refused["deletedId"] is None and "end the schedule first" in refused["userErrors"][0]["message"]
    edited = await api.gql(
        'mutation($id: ID!) { updateCampaign(input: {id: $id, body: "New {{name}}"}) { userErrors { message } } }',
        id=model["id"],
    )
    assert edited["updateCampaign"]["userErrors"] == []  # its edits apply to the occurrences to come
    await change(api, "endRecurringSchedule", gid)
    deleted = (await api.gql(delete, id=model["id"]))["deleteCampaign"]
    assert deleted == {"deletedId": model["id"], "userErrors": []}


async def test_an_occurrence_not_launched_says_why(api: Api, clock: ModuleType) -> None:
    model = await api.create_campaign(name="Nobody yet")
    gid = (await create(api, model["id"]))["recurringSchedule"]["id"]
    clock.travel_to(SLOT + timedelta(seconds=1))
    await recurring.run_due()
    read = await api.gql(
        "query($id: ID!) { recurringSchedule(id: $id) { status lastError occurrences { status statusReason } } }",
        id=gid,
    )
    s = read["recurringSchedule"]
    [o] = s["occurrences"]
    assert s["status"] == "ACTIVE" and o["status"] == "DRAFT"
    assert o["statusReason"] == s["lastError"] and "no recipients" in s["lastError"]


async def test_next_occurrences_are_capped(api: Api, clock: ModuleType) -> None:
    model = await api.ready_campaign(1)
    gid = (await create(api, model["id"], cron="0 9 * * 1"))["recurringSchedule"]["id"]
    read = await api.gql("query($id: ID!) { recurringSchedule(id: $id) { nextOccurrences(count: 500) } }", id=gid)
    times = read["recurringSchedule"]["nextOccurrences"]
    assert len(times) == 50 and times[1] == (SLOT + 7 * DAY).isoformat()


async def test_scopes_create_and_resume_need_send_pause_and_end_write(api: Api, clock: ModuleType) -> None:
    model = await api.ready_campaign(1)
    _, writer = await create_key(api.principal, "writer", ["read", "write"])
    as_writer = Api(http=api.http, key=writer, principal=api.principal)
    refused = await create(as_writer, model["id"])
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"] and "`send`" in refused["userErrors"][0][
        "message"
    ]
    gid = (await create(api, model["id"]))["recurringSchedule"]["id"]
    assert (await change(as_writer, "pauseRecurringSchedule", gid))["userErrors"] == []
    assert [e["code"] for e in (await change(as_writer, "resumeRecurringSchedule", gid))["userErrors"]] == ["FORBIDDEN"]
    assert (await change(as_writer, "endRecurringSchedule", gid))["userErrors"] == []
    _, reader = await create_key(api.principal, "reader", ["read"])
    as_reader = Api(http=api.http, key=reader, principal=api.principal)
    assert (await as_reader.gql("{ recurringSchedules { id status } }"))["recurringSchedules"] == [
        {"id": gid, "status": "ENDED"}
    ]
