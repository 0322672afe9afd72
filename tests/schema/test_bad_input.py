"""Bad input to every mutation: a clear error naming the field, and nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from domain.ids import expect_id, to_global_id
from domain.lifecycle import CampaignStatus
from models import Campaign, CampaignEvent, Message
from tests.conftest import CREATE, Api, phone
from tests.schema.states import campaign_in, future, mutate
from tests.schema.test_lifecycle_api import CALLS, run_action

MISSING = to_global_id("Campaign", 987_654_321)


async def snapshot(pk: int) -> tuple[Any, ...]:
    c = await Campaign.get(id=pk)
    return (
        c.status,
        c.version,
        c.name,
        c.total,
        c.scheduled_at,
        await Message.filter(campaign_id=pk).count(),
        await CampaignEvent.filter(campaign_id=pk).count(),
    )


@pytest.mark.parametrize("action", list(CALLS))
@pytest.mark.parametrize("bad_id", ["not-an-id", to_global_id("Message", 1), MISSING])
async def test_wrong_ids_are_not_found(api: Api, action: Any, bad_id: str) -> None:
    payload = await run_action(api, bad_id, action)
    [error] = payload["userErrors"]
    assert error["code"] == "NOT_FOUND"
    assert error["field"][-1] in ("id", "campaignId")


@pytest.mark.parametrize("action", list(CALLS))
async def test_another_workspaces_campaign_is_not_found(api: Api, other_api: Api, action: Any) -> None:
    theirs = await campaign_in(other_api, CampaignStatus.DRAFT)
    pk = expect_id(theirs["id"], "Campaign")
    before = await snapshot(pk)
    payload = await run_action(api, theirs["id"], action)
    [error] = payload["userErrors"]
    assert error["code"] == "NOT_FOUND"
    assert payload.get("campaign") is None
    assert await snapshot(pk) == before
    # exactly like an id that does not exist
    missing = await run_action(api, MISSING, action)
    assert missing["userErrors"][0]["code"] == error["code"]
    assert missing["userErrors"][0]["field"] == error["field"]


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"body": ""}, "body"),
        ({"body": "x" * 4097}, "body"),
        ({"sendRate": 0}, "sendRate"),
        ({"sendRate": 100_000}, "sendRate"),
        ({"failureThreshold": 0}, "failureThreshold"),
        ({"failureThreshold": 1.5}, "failureThreshold"),
        ({"failureSampleSize": 0}, "failureSampleSize"),
        ({"templateName": "Bad Name!"}, "templateName"),
        ({"templateName": "promo", "templateLanguage": None}, "templateLanguage"),
        ({"templateName": "promo", "templateLanguage": "english"}, "templateLanguage"),
    ],
)
async def test_create_campaign_validation(api: Api, given: dict[str, Any], field: str) -> None:
    count = await Campaign.filter(workspace_id=api.principal.workspace_id).count()
    data = await api.gql(CREATE, input={"name": "Ok", "body": "Hello"} | given)
    payload = data["createCampaign"]
    assert payload["campaign"] is None
    [error] = payload["userErrors"]
    assert (error["code"], error["field"]) == ("VALIDATION", ["input", field])
    assert field in error["message"]
    assert await Campaign.filter(workspace_id=api.principal.workspace_id).count() == count


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"name": ""}, "name"),
        ({"body": None}, "body"),
        ({"sendRate": -1}, "sendRate"),
        ({"templateName": "x y"}, "templateName"),
    ],
)
async def test_update_campaign_validation_changes_nothing(api: Api, given: dict[str, Any], field: str) -> None:
    campaign = await api.ready_campaign(1)
    pk = expect_id(campaign["id"], "Campaign")
    before = await snapshot(pk)
    payload = await mutate(api, "updateCampaign(input: $input)", input={"id": campaign["id"], **given})
    [error] = payload["userErrors"]
    assert (error["code"], error["field"]) == ("VALIDATION", ["input", field])
    assert await snapshot(pk) == before


async def test_update_keeps_omitted_fields(api: Api) -> None:
    campaign = await api.create_campaign(sendRate=50)
    payload = await mutate(api, "updateCampaign(input: $input)", input={"id": campaign["id"], "name": "New name"})
    assert payload["userErrors"] == []
    stored = await Campaign.get(id=expect_id(campaign["id"], "Campaign"))
    assert (stored.name, stored.send_rate, stored.body) == ("New name", 50, "Hi {{name}}, 20% off today.")


async def test_invalid_phones_are_reported_by_index_and_the_rest_added(api: Api) -> None:
    campaign = await api.create_campaign()
    result = await api.add(
        campaign["id"],
        (phone(1), {"name": "A"}),
        ("12345", {"name": "B"}),
        ("+1 415 200 0002", {"name": "C"}),
        ("+999999", None),
        (phone(1), {"name": "A again"}),
        (phone(3), {"name": {"nested": True}}),
        (phone(4), ["not", "an", "object"]),
    )
    assert result["userErrors"] == []
    assert (result["added"], result["duplicates"], result["optedOut"]) == (2, 1, 0)
    assert [(i["index"], i["phone"]) for i in result["invalid"]] == [
        (1, "12345"),
        (3, "+999999"),
        (5, phone(3)),
        (6, phone(4)),
    ]
    assert all(i["reason"] for i in result["invalid"])
    assert result["campaign"]["stats"]["total"] == 2
    phones = set(
        await Message.filter(campaign_id=expect_id(campaign["id"], "Campaign")).values_list("phone", flat=True)
    )
    assert phones == {phone(1), "+14152000002"}


async def test_duplicates_against_the_campaign_and_opt_outs_are_counted(api: Api) -> None:
    from models import OptOut

    await OptOut.create(workspace_id=api.principal.workspace_id, phone=phone(9))
    campaign = await api.create_campaign()
    await api.add(campaign["id"], (phone(1), {"name": "A"}))
    result = await api.add(
        campaign["id"], (phone(1), {"name": "A"}), (phone(9), {"name": "Opted"}), (phone(2), {"name": "B"})
    )
    assert (result["added"], result["duplicates"], result["optedOut"]) == (1, 1, 1)
    assert result["campaign"]["stats"]["total"] == 2


async def test_more_than_ten_thousand_recipients_is_refused_whole(api: Api) -> None:
    campaign = await api.create_campaign()
    pk = expect_id(campaign["id"], "Campaign")
    result = await api.add(campaign["id"], *[(phone(i), {"name": "x"}) for i in range(10_001)])
    [error] = result["userErrors"]
    assert (error["code"], error["field"]) == ("LIMIT_EXCEEDED", ["input", "recipients"])
    assert await Message.filter(campaign_id=pk).count() == 0


async def test_remove_more_than_ten_thousand_phones_is_refused(api: Api) -> None:
    campaign = await api.ready_campaign(2)
    query = (
        "mutation($id: ID!, $phones: [String!]!) { removeRecipients(input: {campaignId: $id, phones: $phones}) "
        "{ userErrors { field code } } }"
    )
    data = await api.gql(query, id=campaign["id"], phones=[phone(i) for i in range(10_001)])
    [error] = data["removeRecipients"]["userErrors"]
    assert (error["code"], error["field"]) == ("LIMIT_EXCEEDED", ["input", "phones"])
    assert (await Campaign.get(id=expect_id(campaign["id"], "Campaign"))).total == 2


async def test_remove_recipients_accepts_any_format_of_the_phone(api: Api) -> None:
    campaign = await api.ready_campaign(3)
    query = "mutation($id: ID!, $phones: [String!]!) { removeRecipients(input: {campaignId: $id, phones: $phones}) { campaign { stats { total pending } } userErrors { code } } }"
    data = await api.gql(query, id=campaign["id"], phones=["+1 415 200 0000", "+19999999999"])
    assert data["removeRecipients"]["campaign"]["stats"] == {"total": 2, "pending": 2}


@pytest.mark.parametrize("when", ["2030-01-01T09:00:00", "tomorrow", "2030-13-01T09:00:00Z"])
async def test_naive_or_malformed_datetimes_are_refused_before_anything_runs(api: Api, when: str) -> None:
    campaign = await api.ready_campaign(1)
    pk = expect_id(campaign["id"], "Campaign")
    before = await snapshot(pk)
    body = await api.raw(
        "mutation($id: ID!, $at: DateTime!) { scheduleCampaign(id: $id, scheduledAt: $at) { userErrors { code } } }",
        id=campaign["id"],
        at=when,
    )
    assert body.get("data") is None
    [error] = body["errors"]
    assert "$at" in error["message"] and "DateTime" in error["message"]
    if when.startswith("2030-01"):
        assert "offset" in error["message"]
    assert await snapshot(pk) == before


async def test_datetimes_with_an_offset_are_stored_in_utc(api: Api) -> None:
    campaign = await api.ready_campaign(1)
    at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    local = at.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    payload = await mutate(api, "scheduleCampaign(id: $id, scheduledAt: $at)", id=campaign["id"], at=local)
    assert payload["userErrors"] == []
    assert datetime.fromisoformat(payload["campaign"]["scheduledAt"]) == at


@pytest.mark.parametrize("call", ["scheduleCampaign", "rescheduleCampaign"])
async def test_past_schedule_times_are_refused(api: Api, call: str) -> None:
    status = CampaignStatus.DRAFT if call == "scheduleCampaign" else CampaignStatus.SCHEDULED
    campaign = await campaign_in(api, status)
    pk = expect_id(campaign["id"], "Campaign")
    before = await snapshot(pk)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    payload = await mutate(api, f"{call}(id: $id, scheduledAt: $at)", id=campaign["id"], at=past)
    [error] = payload["userErrors"]
    assert (error["code"], error["field"]) == ("VALIDATION", ["scheduledAt"])
    assert "future" in error["message"]
    assert await snapshot(pk) == before


@pytest.mark.parametrize("call", ["scheduleCampaign(id: $id, scheduledAt: $at)", "sendCampaignNow(id: $id)"])
async def test_leaving_draft_needs_recipients(api: Api, call: str) -> None:
    campaign = await api.create_campaign()
    variables = {"id": campaign["id"]} | ({"at": future()} if "$at" in call else {})
    payload = await mutate(api, call, **variables)
    [error] = payload["userErrors"]
    assert error["code"] == "VALIDATION" and "no recipients" in error["message"]
    assert (await Campaign.get(id=expect_id(campaign["id"], "Campaign"))).status is CampaignStatus.DRAFT


@pytest.mark.parametrize("call", ["scheduleCampaign(id: $id, scheduledAt: $at)", "sendCampaignNow(id: $id)"])
async def test_leaving_draft_needs_every_placeholder_filled(api: Api, call: str) -> None:
    campaign = await api.create_campaign(body="Hi {{name}}, your code is {{ code }}")
    await api.add(
        campaign["id"],
        (phone(1), {"name": "A", "code": "X1"}),
        (phone(2), {"name": "B"}),
        (phone(3), {"name": "", "code": "X3"}),
    )
    variables = {"id": campaign["id"]} | ({"at": future()} if "$at" in call else {})
    payload = await mutate(api, call, **variables)
    [error] = payload["userErrors"]
    assert error["code"] == "VALIDATION"
    assert "2 recipient(s)" in error["message"] and phone(2) in error["message"] and "code" in error["message"]
    assert (await Campaign.get(id=expect_id(campaign["id"], "Campaign"))).status is CampaignStatus.DRAFT


async def test_duplicate_and_cancel_validate_their_text(api: Api) -> None:
    campaign = await campaign_in(api, CampaignStatus.QUEUED)
    pk = expect_id(campaign["id"], "Campaign")
    before = await snapshot(pk)
    dup = await mutate(api, "duplicateCampaign(id: $id, name: $name)", id=campaign["id"], name=" ")
    assert [(e["code"], e["field"]) for e in dup["userErrors"]] == [("VALIDATION", ["name"])]
    cancel = await mutate(api, "cancelCampaign(id: $id, reason: $reason)", id=campaign["id"], reason="x" * 1001)
    assert [(e["code"], e["field"]) for e in cancel["userErrors"]] == [("VALIDATION", ["reason"])]
    assert await snapshot(pk) == before


async def test_malformed_cursor_and_negative_page_size_are_errors(api: Api) -> None:
    body = await api.raw('{ campaigns(after: "garbage") { totalCount } }')
    assert body["errors"][0]["extensions"] == {"code": "VALIDATION", "field": ["after"]}
    body = await api.raw("{ campaigns(first: -1) { totalCount } }")
    assert body["errors"][0]["extensions"]["field"] == ["first"]
