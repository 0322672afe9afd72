"""Sender accounts over real HTTP GraphQL (schema/senders.py), checked against the
simulator serving the Cloud API's phone-number lookup: the right token connects, a
wrong one, another number's one or an unknown number is refused by field with nothing
written, and no answer ever carries a token."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from domain.ids import expect_id, to_global_id
from models import Campaign, Sender
from tests.conftest import Api
from tests.schema.conftest import SECOND
from tests.simulator.conftest import Sim

SENDER = "sender { id name wabaId phoneNumberId displayPhoneNumber verifiedName throughput messagingTier isDefault }"
CONNECT = f"""mutation($input: ConnectSenderInput!) {{
  connectSender(input: $input) {{ {SENDER} userErrors {{ field message code }} }} }}"""
UPDATE = f"""mutation($input: UpdateSenderInput!) {{
  updateSender(input: $input) {{ {SENDER} userErrors {{ field message code }} }} }}"""
DISCONNECT = "mutation($id: ID!) { disconnectSender(id: $id) { disconnectedId userErrors { field message code } } }"


def given(**more: Any) -> dict[str, Any]:
    return {
        "name": "Shop line",
        "wabaId": SECOND["waba_id"],
        "phoneNumberId": SECOND["phone_number_id"],
        "accessToken": SECOND["access_token"],
    } | more


async def connect(api: Api, **more: Any) -> dict[str, Any]:
    body = await api.raw(CONNECT, input=given(**more))
    assert "errors" not in body, body
    return dict(body["data"]["connectSender"])


async def stored(api: Api) -> list[Sender]:
    return await Sender.filter(workspace_id=api.principal.workspace_id)


async def test_a_number_the_cloud_api_confirms_is_connected_and_its_token_never_shown(api: Api, sim: Sim) -> None:
    response = await api.http.post(
        "/graphql", json={"query": CONNECT, "variables": {"input": given()}}, headers=api.headers
    )
    assert SECOND["access_token"] not in response.text
    payload = response.json()["data"]["connectSender"]
    assert payload["userErrors"] == []
    sender = payload["sender"]
    assert {k: sender[k] for k in ("phoneNumberId", "displayPhoneNumber", "verifiedName", "throughput")} == {
        "phoneNumberId": SECOND["phone_number_id"],
        "displayPhoneNumber": SECOND["display_phone_number"],
        "verifiedName": "Second Shop",
        "throughput": 80,  # Meta's STANDARD level
    }
    assert (sender["messagingTier"], sender["isDefault"]) == ("TIER_2K", True)
    listed = await api.gql("{ senders " + SENDER.removeprefix("sender ") + " }")
    assert listed["senders"] == [sender]
    (row,) = await stored(api)
    assert SECOND["access_token"] not in row.access_token_sealed
    # a new campaign sends from the default sender
    campaign = await api.create_campaign()
    assert (await Campaign.get(id=expect_id(campaign["id"], "Campaign"))).sender_id == row.id
    shown = await api.gql("query($id: ID!) { campaign(id: $id) { sender { id name } } }", id=campaign["id"])
    assert shown["campaign"]["sender"] == {"id": sender["id"], "name": "Shop line"}
    listed_page = await api.gql("{ campaigns(first: 5) { edges { node { sender { id } } } } }")
    assert listed_page["campaigns"]["edges"][0]["node"]["sender"] == {"id": sender["id"]}


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"accessToken": "EAAG-wrong"}, "accessToken"),
        ({"accessToken": "dev-token"}, "phoneNumberId"),  # the first number's token: not this number's
        ({"phoneNumberId": "100000000000999"}, "phoneNumberId"),  # no such number
    ],
    ids=["wrong-token", "another-numbers-token", "unknown-number"],
)
async def test_a_number_the_cloud_api_refuses_is_not_connected(
    api: Api, sim: Sim, override: dict[str, str], field: str
) -> None:
    refused = await connect(api, **override)
    assert refused["sender"] is None
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [(["input", field], "VALIDATION")]
    assert await stored(api) == []


async def test_every_bad_input_is_reported_at_once_and_nothing_is_written(api: Api, sim: Sim) -> None:
    bad = await connect(api, name="", wabaId="waba", phoneNumberId="x1", accessToken="", throughput=5000)
    assert [e["field"] for e in bad["userErrors"]] == [
        ["input", "name"],
        ["input", "wabaId"],
        ["input", "phoneNumberId"],
        ["input", "accessToken"],
        ["input", "throughput"],
    ]
    assert await stored(api) == [] and (await sim.ledger())["accepted"] == 0


async def test_a_number_is_connected_to_one_workspace_at_most(api: Api, other_api: Api, sim: Sim) -> None:
    assert (await connect(api))["userErrors"] == []
    taken = await connect(other_api)
    assert [(e["field"], e["code"]) for e in taken["userErrors"]] == [(["input", "phoneNumberId"], "CONFLICT")]
    # another workspace's sender cannot be picked, updated or disconnected
    (ours,) = await stored(api)
    gid = to_global_id("Sender", ours.id)
    picked = await other_api.gql(
        "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { userErrors { field code } } }",
        input={"name": "x", "body": "y", "senderId": gid},
    )
    assert picked["createCampaign"]["userErrors"] == [{"field": ["input", "senderId"], "code": "NOT_FOUND"}]
    renamed = await other_api.gql(UPDATE, input={"id": gid, "name": "mine now"})
    assert [e["code"] for e in renamed["updateSender"]["userErrors"]] == ["NOT_FOUND"]
    gone = await other_api.gql(DISCONNECT, id=gid)
    assert [e["code"] for e in gone["disconnectSender"]["userErrors"]] == ["NOT_FOUND"]
    assert (await Sender.get(id=ours.id)).name == "Shop line"


async def test_update_rechecks_a_new_token_and_disconnect_frees_the_number(api: Api, sim: Sim) -> None:
    sender = (await connect(api))["sender"]
    refused = await api.gql(UPDATE, input={"id": sender["id"], "accessToken": "EAAG-revoked"})
    assert [e["field"] for e in refused["updateSender"]["userErrors"]] == [["input", "accessToken"]]
    renamed = await api.gql(UPDATE, input={"id": sender["id"], "name": "Renamed", "throughput": 20})
    assert (renamed["updateSender"]["sender"]["name"], renamed["updateSender"]["sender"]["throughput"]) == (
        "Renamed",
        20,
    )
    assert (await api.gql(DISCONNECT, id=sender["id"]))["disconnectSender"] == {
        "disconnectedId": sender["id"],
        "userErrors": [],
    }
    assert (await api.gql("{ senders { id } }"))["senders"] == []
    assert (await connect(api))["userErrors"] == []  # the number can be connected again


async def test_the_token_is_in_no_log_line_and_no_answer(api: Api, sim: Sim, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        connected = await connect(api)
        await api.gql(UPDATE, input={"id": connected["sender"]["id"], "accessToken": "EAAG-wrong"})  # refused
        listed = await api.http.post("/graphql", json={"query": "{ senders { id name } }"}, headers=api.headers)
    assert SECOND["access_token"] not in caplog.text and "EAAG-wrong" not in caplog.text
    assert SECOND["access_token"] not in listed.text
    campaign = await api.ready_campaign(1)
    report = await api.http.get(f"/campaigns/{campaign['id']}/report.csv", headers=api.headers)
    assert report.status_code == 200 and SECOND["access_token"] not in report.text
