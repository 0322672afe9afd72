"""Every (status, action) pair of the lifecycle through the GraphQL API: allowed ones
move the campaign exactly as the table says and write one event; refused ones are
INVALID_TRANSITION naming the status and allowed actions, and change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from domain import lifecycle
from domain.ids import expect_id
from domain.lifecycle import Action, CampaignStatus
from models import Campaign, CampaignEvent
from tests.conftest import Api, phone
from tests.schema.states import campaign_in, future, mutate

A, S = Action, CampaignStatus

#: action -> (mutation call, extra variables, selection override)
CALLS: dict[Action, tuple[str, dict[str, Any], str | None]] = {
    A.EDIT: ("updateCampaign(input: $input)", {"input": {"name": "Renamed"}}, None),
    A.ADD_RECIPIENTS: (
        'addRecipients(input: {campaignId: $id, recipients: [{phone: "+14155559999", variables: {name: "New"}}]})',
        {},
        "added userErrors { field message code } campaign { id status allowedActions }",
    ),
    A.REMOVE_RECIPIENTS: (f'removeRecipients(input: {{campaignId: $id, phones: ["{phone(0)}"]}})', {}, None),
    A.DELETE: ("deleteCampaign(id: $id)", {}, "deletedId userErrors { field message code }"),
    A.SCHEDULE: ("scheduleCampaign(id: $id, scheduledAt: $at)", {"at": future()}, None),
    A.SEND_NOW: ("sendCampaignNow(id: $id)", {}, None),
    A.RESCHEDULE: ("rescheduleCampaign(id: $id, scheduledAt: $at)", {"at": future(120)}, None),
    A.UNSCHEDULE: ("unscheduleCampaign(id: $id)", {}, None),
    A.PAUSE: ("pauseCampaign(id: $id)", {}, None),
    A.RESUME: ("resumeCampaign(id: $id)", {}, None),
    A.CANCEL: ("cancelCampaign(id: $id, reason: $reason)", {"reason": "wrong audience"}, None),
    A.RETRY_FAILED: ("retryFailedMessages(id: $id)", {}, None),
    A.RETRY: ("retryCampaign(id: $id)", {}, None),
    A.DUPLICATE: ("duplicateCampaign(id: $id)", {}, None),
}


async def run_action(api: Api, gid: str, action: Action) -> dict[str, Any]:
    call, extra, selection = CALLS[action]
    variables = dict(extra)
    if "input" in variables:
        variables["input"] = {"id": gid, **variables["input"]}
    else:
        variables["id"] = gid
    kwargs: dict[str, Any] = {"selection": selection} if selection else {}
    return await mutate(api, call, **kwargs, **variables)


@pytest.mark.parametrize("status", list(CampaignStatus))
@pytest.mark.parametrize("action", lifecycle.USER_ACTIONS)
async def test_status_action_pair(api: Api, status: CampaignStatus, action: Action) -> None:
    campaign = await campaign_in(api, status)
    assert campaign["status"] == status.value
    assert campaign["allowedActions"] == [a.value for a in lifecycle.allowed_actions(status)]
    pk = expect_id(campaign["id"], "Campaign")
    events_before = await CampaignEvent.filter(campaign_id=pk).count()
    before = await Campaign.get(id=pk)

    payload = await run_action(api, campaign["id"], action)

    if (status, action) not in lifecycle.TABLE:
        [error] = payload["userErrors"]
        assert error["code"] == "INVALID_TRANSITION"
        assert error["field"] == (
            ["input", "id"] if action is A.EDIT else ["input", "campaignId"] if "RECIPIENTS" in action.value else ["id"]
        )
        assert status.value in error["message"]
        for allowed in lifecycle.allowed_actions(status):
            assert allowed.value in error["message"]
        if action is not A.DELETE:
            assert payload["campaign"]["status"] == status.value  # the campaign as it is now
        after = await Campaign.get(id=pk)
        assert (after.status, after.version, after.total) == (before.status, before.version, before.total)
        assert await CampaignEvent.filter(campaign_id=pk).count() == events_before
        return

    assert payload["userErrors"] == [], payload
    target = lifecycle.TABLE[(status, action)]
    if action is A.DELETE:
        assert payload["deletedId"] == campaign["id"]
        assert not await Campaign.exists(id=pk)
        return
    if action is A.DUPLICATE:
        copy = payload["campaign"]
        assert copy["status"] == "DRAFT" and copy["id"] != campaign["id"]
        assert copy["stats"]["total"] == before.total
        assert (await Campaign.get(id=pk)).status is status  # the original is untouched
        return
    after = await Campaign.get(id=pk)
    assert after.status is target
    events = await CampaignEvent.filter(campaign_id=pk).order_by("id")
    if target is not status or action is A.RESCHEDULE:
        assert len(events) == events_before + 1
        last = events[-1]
        assert (last.from_status, last.to_status, last.action, last.actor) == (
            status,
            target,
            action.value,
            "tester",
        )
    assert after.total == after.pending + after.sent + after.failed + after.cancelled


async def test_cancel_moves_pending_messages_and_counters(api: Api) -> None:
    campaign = await campaign_in(api, S.PAUSED, recipients=5)
    payload = await mutate(api, "cancelCampaign(id: $id, reason: $reason)", id=campaign["id"], reason="typo in body")
    stats = payload["campaign"]["stats"]
    assert payload["campaign"]["statusReason"] == "typo in body"
    assert (stats["total"], stats["pending"], stats["cancelled"]) == (5, 0, 5)


async def test_retry_failed_requeues_only_retryable_failures(api: Api) -> None:
    from tests.schema.states import settle_outcomes

    campaign = await campaign_in(api, S.PROCESSING, recipients=6)
    pk = expect_id(campaign["id"], "Campaign")
    await settle_outcomes(pk, sent=2, failed=2, code="131000")  # transient: retryable
    await settle_outcomes(pk, sent=0, failed=2, code="131026")  # undeliverable: permanent
    from services.transitions import apply_system_action

    await apply_system_action(pk, A.COMPLETE, actor="worker")
    payload = await mutate(api, "retryFailedMessages(id: $id)", id=campaign["id"])
    stats = payload["campaign"]["stats"]
    assert payload["campaign"]["status"] == "QUEUED"
    assert (stats["pending"], stats["failed"], stats["sent"]) == (2, 2, 2)


async def test_retry_failed_with_nothing_retryable_is_refused(api: Api) -> None:
    campaign = await campaign_in(api, S.PROCESSING, recipients=2)
    pk = expect_id(campaign["id"], "Campaign")
    from services.transitions import apply_system_action
    from tests.schema.states import settle_outcomes

    await settle_outcomes(pk, sent=1, failed=1, code="131026")
    await apply_system_action(pk, A.COMPLETE, actor="worker")
    payload = await mutate(api, "retryFailedMessages(id: $id)", id=campaign["id"])
    assert [e["code"] for e in payload["userErrors"]] == ["VALIDATION"]
    assert (await Campaign.get(id=pk)).status is S.COMPLETED


SEND_NOW = "mutation($id: ID!) { sendCampaignNow(id: $id) { campaign { status } userErrors { field message code } } }"


async def test_a_message_that_would_render_past_whatsapps_4096_characters_is_refused_naming_its_recipient(
    api: Api,
) -> None:
    """The body is at most 4,096 characters, but its variables make each message longer:
    launching checks the longest one (here 9 + 2 x 2,100) and names that recipient."""
    campaign = await api.create_campaign(body="Hi {{name}} and {{ name }}!")
    long_name, short = "n" * 2100, "Ann"
    report = await api.add(campaign["id"], (phone(1), {"name": short}), (phone(2), {"name": long_name}))
    assert report["added"] == 2
    refused = (await api.gql(SEND_NOW, id=campaign["id"]))["sendCampaignNow"]
    [error] = refused["userErrors"]
    assert (error["code"], error["field"]) == ("VALIDATION", ["id"])
    assert error["message"].startswith(f"The message to {phone(2)} would be 4,209 characters;"), error
    assert (await Campaign.get(id=expect_id(campaign["id"], "Campaign"))).status is CampaignStatus.DRAFT
    await api.gql(
        "mutation($id: ID!, $p: String!) { removeRecipients(input: {campaignId: $id, phones: [$p]})"
        " { userErrors { code } } }",
        id=campaign["id"],
        p=phone(2),
    )
    sent = (await api.gql(SEND_NOW, id=campaign["id"]))["sendCampaignNow"]
    assert sent["userErrors"] == [] and sent["campaign"]["status"] == "QUEUED"
