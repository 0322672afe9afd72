"""Every mutation and every query family against the scopes (domain/access.py): a key
without the scope an operation needs is refused with FORBIDDEN and changes nothing; a
key with just that scope is not refused for want of one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from domain.access import MUTATION_SCOPES, QUERY_SCOPES, Scope, needed
from domain.ids import expect_id, to_global_id
from models import ApiKey, Campaign, OptOut, RecurringSchedule, Sender, WebhookDelivery, WebhookEndpoint, Workspace
from schema.app import schema
from services.keys import create_key
from services.recurring import create_schedule
from services.tokens import TokenBox
from services.webhooks import create_endpoint
from settings import Settings
from tests.conftest import Api, phone
from tests.wsclient import connect

LATER = (datetime.now(UTC) + timedelta(days=30)).isoformat()

#: a document and its variables for each mutation; `$id` is a ready DRAFT campaign
MUTATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "createCampaign": (
        'mutation { createCampaign(input: {name: "n", body: "b"}) { userErrors { code } } }',
        {},
    ),
    "updateCampaign": (
        'mutation($id: ID!) { updateCampaign(input: {id: $id, name: "renamed"}) { userErrors { code } } }',
        {},
    ),
    "deleteCampaign": ("mutation($id: ID!) { deleteCampaign(id: $id) { userErrors { code } } }", {}),
    "addRecipients": (
        "mutation($id: ID!, $p: String!) { addRecipients(input: {campaignId: $id, recipients: [{phone: $p}]})"
        " { userErrors { code } } }",
        {"p": phone(900)},
    ),
    "removeRecipients": (
        "mutation($id: ID!, $p: String!) { removeRecipients(input: {campaignId: $id, phones: [$p]})"
        " { userErrors { code } } }",
        {"p": phone(0)},
    ),
    "scheduleCampaign": (
        "mutation($id: ID!, $at: DateTime!) { scheduleCampaign(id: $id, scheduledAt: $at) { userErrors { code } } }",
        {"at": LATER},
    ),
    "rescheduleCampaign": (
        "mutation($id: ID!, $at: DateTime!) { rescheduleCampaign(id: $id, scheduledAt: $at) { userErrors { code } } }",
        {"at": LATER},
    ),
    "scheduleCampaignInLocalTime": (
        'mutation($id: ID!) { scheduleCampaignInLocalTime(id: $id, date: "2030-01-01", time: "09:00") '
        "{ userErrors { code } } }",
        {},
    ),
    "rescheduleCampaignInLocalTime": (
        'mutation($id: ID!) { rescheduleCampaignInLocalTime(id: $id, date: "2030-01-01", time: "09:00") '
        "{ userErrors { code } } }",
        {},
    ),
    "unscheduleCampaign": ("mutation($id: ID!) { unscheduleCampaign(id: $id) { userErrors { code } } }", {}),
    "sendCampaignNow": ("mutation($id: ID!) { sendCampaignNow(id: $id) { userErrors { code } } }", {}),
    "pauseCampaign": ("mutation($id: ID!) { pauseCampaign(id: $id) { userErrors { code } } }", {}),
    "resumeCampaign": ("mutation($id: ID!) { resumeCampaign(id: $id) { userErrors { code } } }", {}),
    "cancelCampaign": ("mutation($id: ID!) { cancelCampaign(id: $id) { userErrors { code } } }", {}),
    "retryFailedMessages": ("mutation($id: ID!) { retryFailedMessages(id: $id) { userErrors { code } } }", {}),
    "retryCampaign": ("mutation($id: ID!) { retryCampaign(id: $id) { userErrors { code } } }", {}),
    "duplicateCampaign": ("mutation($id: ID!) { duplicateCampaign(id: $id) { userErrors { code } } }", {}),
    "sendTestMessage": (
        'mutation($id: ID!, $p: String!) { sendTestMessage(id: $id, phone: $p, variables: {name: "T"})'
        " { userErrors { code } } }",
        {"p": phone(901)},
    ),
    "createApiKey": ('mutation { createApiKey(name: "k", scopes: [READ]) { userErrors { code } } }', {}),
    "revokeApiKey": ("mutation($key: ID!) { revokeApiKey(id: $key) { userErrors { code } } }", {}),
    "createWebhookEndpoint": (
        'mutation { createWebhookEndpoint(input: {url: "https://example.com/h", events: [CAMPAIGN_COMPLETED]})'
        " { userErrors { code } } }",
        {},
    ),
    "updateWebhookEndpoint": (
        "mutation($hook: ID!) { updateWebhookEndpoint(input: {id: $hook, enabled: false}) { userErrors { code } } }",
        {},
    ),
    "rotateWebhookSecret": ("mutation($hook: ID!) { rotateWebhookSecret(id: $hook) { userErrors { code } } }", {}),
    "deleteWebhookEndpoint": ("mutation($hook: ID!) { deleteWebhookEndpoint(id: $hook) { userErrors { code } } }", {}),
    "sendTestWebhook": ("mutation($hook: ID!) { sendTestWebhook(endpointId: $hook) { userErrors { code } } }", {}),
    "connectSender": (
        'mutation { connectSender(input: {name: "n", wabaId: "1", phoneNumberId: "2", accessToken: "t"})'
        " { userErrors { code } } }",
        {},
    ),
    "updateSender": (
        'mutation($sender: ID!) { updateSender(input: {id: $sender, name: "renamed"}) { userErrors { code } } }',
        {},
    ),
    "disconnectSender": ("mutation($sender: ID!) { disconnectSender(id: $sender) { userErrors { code } } }", {}),
    "syncTemplates": ("mutation($sender: ID!) { syncTemplates(senderId: $sender) { userErrors { code } } }", {}),
    "addOptOuts": ("mutation($p: String!) { addOptOuts(phones: [$p]) { userErrors { code } } }", {"p": phone(902)}),
    "removeOptOut": ("mutation($p: String!) { removeOptOut(phone: $p) { userErrors { code } } }", {"p": phone(903)}),
    "setStopKeywords": ('mutation { setStopKeywords(keywords: ["STOP", "HALT"]) { userErrors { code } } }', {}),
    "createRecurringSchedule": (
        'mutation($id: ID!) { createRecurringSchedule(input: {campaignId: $id, cron: "0 9 * * 1", timeZone: "UTC"})'
        " { userErrors { code } } }",
        {},
    ),
    "pauseRecurringSchedule": (
        "mutation($sched: ID!) { pauseRecurringSchedule(id: $sched) { userErrors { code } } }",
        {},
    ),
    "resumeRecurringSchedule": (
        "mutation($sched: ID!) { resumeRecurringSchedule(id: $sched) { userErrors { code } } }",
        {},
    ),
    "endRecurringSchedule": ("mutation($sched: ID!) { endRecurringSchedule(id: $sched) { userErrors { code } } }", {}),
}

QUERIES: dict[str, str] = {
    "viewer": "{ viewer { id name } }",
    "campaign": "query($id: ID!) { campaign(id: $id) { id } }",
    "campaigns": "{ campaigns(first: 5) { edges { node { id } } } }",
    "node": "query($id: ID!) { node(id: $id) { id } }",
    "apiKeys": "{ apiKeys { id } }",
    "webhookEndpoints": "{ webhookEndpoints { id deliveries { id } } }",
    "senders": "{ senders { id name } }",
    "templates": "{ templates { id name } }",
    "optOuts": "{ optOuts(first: 5) { totalCount edges { node { id phone source } } } }",
    "recurringSchedules": "{ recurringSchedules { id nextOccurrences campaign { id } occurrences { id } } }",
    "recurringSchedule": "query($id: ID!) { recurringSchedule(id: $id) { id } }",
}


def _schema_fields(kind: str) -> set[str]:
    root = {"mutation": schema._schema.mutation_type, "query": schema._schema.query_type}[kind]
    assert root is not None
    return set(root.fields)


def test_every_mutation_has_its_scope_in_the_table_and_a_case_here() -> None:
    assert set(MUTATION_SCOPES) == _schema_fields("mutation")
    assert set(MUTATIONS) == _schema_fields("mutation")
    assert set(QUERIES) == _schema_fields("query") and set(QUERY_SCOPES) <= set(QUERIES)


async def _key(api: Api, scopes: set[Scope]) -> dict[str, str]:
    _, secret = await create_key(api.principal, "scoped", [s.value for s in scopes])
    return {"Authorization": f"Bearer {secret}"}


async def _post(http: httpx.AsyncClient, headers: dict[str, str], query: str, **variables: Any) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def _state(api: Api) -> tuple[Any, ...]:
    campaigns = (
        await Campaign.filter(workspace_id=api.principal.workspace_id)
        .order_by("id")
        .values_list("id", "status", "version", "name", "total")
    )
    keys = await ApiKey.filter(workspace_id=api.principal.workspace_id).order_by("id").values_list("id", "revoked_at")
    hooks = (
        await WebhookEndpoint.filter(workspace_id=api.principal.workspace_id)
        .order_by("id")
        .values_list("id", "url", "events", "enabled", "secret")
    )
    tests = await WebhookDelivery.filter(endpoint__workspace_id=api.principal.workspace_id).count()
    senders = (
        await Sender.filter(workspace_id=api.principal.workspace_id)
        .order_by("id")
        .values_list("id", "name", "disconnected_at", "is_default")
    )
    opt_outs = await OptOut.filter(workspace_id=api.principal.workspace_id).order_by("id").values_list("id", "phone")
    keywords = await Workspace.get(id=api.principal.workspace_id).values_list("stop_keywords", flat=True)
    schedules = (
        await RecurringSchedule.filter(workspace_id=api.principal.workspace_id)
        .order_by("id")
        .values_list("id", "status", "version")
    )
    return tuple(campaigns), tuple(keys), tuple(hooks), tests, tuple(senders), tuple(opt_outs), keywords, schedules


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
async def test_a_mutation_outside_the_keys_scopes_is_forbidden_and_changes_nothing(api: Api, mutation: str) -> None:
    campaign = await api.ready_campaign(2)
    await _key(api, {Scope.READ})  # a key that revokeApiKey may revoke
    spare_id = (await _post(api.http, api.headers, "{ apiKeys { id } }"))["data"]["apiKeys"][0]["id"]
    hook, _ = await create_endpoint(api.principal, "https://example.com/hook", ["campaign.status_changed"])
    need = needed("mutation", mutation)
    document, extra = MUTATIONS[mutation]
    sender = await Sender.create(
        workspace_id=api.principal.workspace_id,
        name="s",
        waba_id="1",
        phone_number_id=f"9{api.principal.workspace_id:014d}",
        display_phone_number="15550001",
        access_token_sealed=TokenBox(Settings().sender_token_key).seal("EAAG-test"),
        throughput=80,
    )
    model = expect_id((await api.ready_campaign(1))["id"], "Campaign")
    recurring = await create_schedule(api.principal, model, cron="0 9 * * *", time_zone="UTC")
    given = {
        "sched": to_global_id("RecurringSchedule", recurring.id),
        "id": campaign["id"],
        "key": spare_id,
        "hook": to_global_id("WebhookEndpoint", hook.id),
        "sender": to_global_id("Sender", sender.id),
    } | extra
    variables = {name: value for name, value in given.items() if f"${name}" in document}
    lacking = await _key(api, set(Scope) - {need})
    before = await _state(api)
    body = await _post(api.http, lacking, document, **variables)
    assert "errors" not in body, body
    assert body["data"][mutation]["userErrors"] == [{"code": "FORBIDDEN"}]
    assert await _state(api) == before
    only = await _key(api, {need})
    body = await _post(api.http, only, document, **variables)
    assert "errors" not in body, body
    assert {"code": "FORBIDDEN"} not in body["data"][mutation]["userErrors"]


@pytest.mark.parametrize("query", sorted(QUERIES))
async def test_a_query_outside_the_keys_scopes_is_an_error_with_the_forbidden_code(api: Api, query: str) -> None:
    campaign = await api.ready_campaign(1)
    need = needed("query", query)
    lacking = await _key(api, set(Scope) - {need})
    document = QUERIES[query]
    variables = {"id": campaign["id"]} if "$id" in document else {}
    body = await _post(api.http, lacking, document, **variables)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body
    assert need.value in body["errors"][0]["message"]
    body = await _post(api.http, await _key(api, {need}), document, **variables)
    assert "errors" not in body, body


async def test_a_subscription_without_the_read_scope_is_refused(api: Api, server: str) -> None:
    campaign = await api.ready_campaign(1)
    _, secret = await create_key(api.principal, "writer", ["write", "send"])
    async with connect(server, secret) as ws:
        await ws.subscribe("subscription($id: ID!) { campaignProgress(id: $id) { status } }", id=campaign["id"])
        message = await ws.next()
        errors = message["payload"]["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"], message
        assert "campaignProgress" in errors[0]["message"] and message["payload"]["data"] is None


async def test_the_csv_routes_ask_write_to_import_and_read_to_export(api: Api) -> None:
    campaign = await api.ready_campaign(1)
    reader, writer = await _key(api, {Scope.READ}), await _key(api, {Scope.WRITE})
    csv = f"phone,name\n{phone(50)},Ann\n".encode()
    path = f"/campaigns/{campaign['id']}"
    refused = await api.http.post(f"{path}/recipients", content=csv, headers=reader | {"Content-Type": "text/csv"})
    assert refused.status_code == 403 and refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await Campaign.get(id=expect_id(campaign["id"], "Campaign"))).total == 1
    ok = await api.http.post(f"{path}/recipients", content=csv, headers=writer | {"Content-Type": "text/csv"})
    assert ok.status_code == 200 and ok.json()["added"] == 1
    assert (await api.http.get(f"{path}/report.csv", headers=writer)).status_code == 403
    assert (await api.http.get(f"{path}/report.csv", headers=reader)).status_code == 200
