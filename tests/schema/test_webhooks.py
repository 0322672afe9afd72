"""Webhook endpoints over real HTTP GraphQL (schema/webhooks.py): the secret shown once,
every bad input reported by field with nothing written, another workspace's endpoints
invisible, and sendTestWebhook delivered (by a dispatcher running here) and logged."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from starlette.applications import Starlette

from domain import webhooks as wh
from models import WebhookDelivery, WebhookEndpoint
from settings import Settings
from tests.conftest import Api
from tests.jobs.test_webhooks import dispatching
from tests.receiver import receiver
from tests.waiting import until

ENDPOINT = "endpoint { id url events enabled secretHint createdAt updatedAt }"
CREATE = f"""mutation($input: CreateWebhookEndpointInput!) {{
  createWebhookEndpoint(input: $input) {{ {ENDPOINT} secret userErrors {{ field message code }} }}
}}"""
UPDATE = f"""mutation($input: UpdateWebhookEndpointInput!) {{
  updateWebhookEndpoint(input: $input) {{ {ENDPOINT} userErrors {{ field message code }} }}
}}"""
ROTATE = f"""mutation($id: ID!) {{
  rotateWebhookSecret(id: $id) {{ {ENDPOINT} secret userErrors {{ field message code }} }}
}}"""
DELETE = "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId userErrors { field message code } } }"
TEST = """mutation($id: ID!) { sendTestWebhook(endpointId: $id) {
  delivery { id eventId eventType status attempts } userErrors { field message code } } }"""
LOG = """query($status: WebhookDeliveryStatus) { webhookEndpoints { id url deliveries(status: $status) {
  id eventId eventType campaignId status attempts lastStatusCode lastError lastAttemptAt nextAttemptAt
  createdAt deliveredAt payload } } }"""


async def create(api: Api, url: str, events: list[str] | None = None, **more: Any) -> dict[str, Any]:
    given = {"url": url, "events": events if events is not None else ["CAMPAIGN_STATUS_CHANGED"]} | more
    return dict((await api.gql(CREATE, input=given))["createWebhookEndpoint"])


async def rows(api: Api) -> list[tuple[Any, ...]]:
    return list(
        await WebhookEndpoint.filter(workspace_id=api.principal.workspace_id)
        .order_by("id")
        .values_list("id", "url", "events", "enabled", "secret")
    )


async def test_an_endpoint_is_created_with_its_secret_shown_once(api: Api) -> None:
    made = await create(api, "https://example.com/hooks", ["CAMPAIGN_COMPLETED", "CAMPAIGN_STATUS_CHANGED"])
    assert made["userErrors"] == []
    secret = made["secret"]
    assert secret.startswith(wh.SECRET_PREFIX) and len(secret) == len(wh.SECRET_PREFIX) + 64
    endpoint = made["endpoint"]
    assert endpoint["url"] == "https://example.com/hooks" and endpoint["enabled"] is True
    assert endpoint["events"] == ["CAMPAIGN_STATUS_CHANGED", "CAMPAIGN_COMPLETED"]
    assert secret.startswith(endpoint["secretHint"].rstrip("…")) and secret not in str(endpoint)
    listed = (await api.gql(LOG))["webhookEndpoints"]
    assert [(e["id"], e["url"], e["deliveries"]) for e in listed] == [(endpoint["id"], endpoint["url"], [])]
    node = await api.gql("query($id: ID!) { node(id: $id) { id ... on WebhookEndpoint { url } } }", id=endpoint["id"])
    assert node["node"] == {"id": endpoint["id"], "url": endpoint["url"]}


async def test_every_bad_input_is_reported_by_field_and_nothing_is_written(api: Api) -> None:
    made = await create(api, "ftp://example.com/x", [])
    assert made["endpoint"] is None and made["secret"] is None
    assert [(e["field"], e["code"]) for e in made["userErrors"]] == [
        (["input", "url"], "VALIDATION"),
        (["input", "events"], "VALIDATION"),
    ]
    assert "https://" in made["userErrors"][0]["message"]
    test_only = await create(api, "https://example.com/x", ["WEBHOOK_TEST"])
    assert [e["field"] for e in test_only["userErrors"]] == [["input", "events"]]
    for url in ("", "https://user:pw@example.com/", "https:///path", "https://example.com/#frag", "x" * 3000):
        bad = await create(api, url)
        assert [e["field"] for e in bad["userErrors"]] == [["input", "url"]], (url, bad)
    assert await rows(api) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/h",
        "http://localhost/h",
        "http://10.1.2.3/h",
        "http://169.254.169.254/latest",
        "http://[::1]/",
    ],
)
async def test_private_targets_are_refused_unless_configured(
    api: Api, app: Starlette, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    strict = dataclasses.replace(app.state.settings, webhook_allow_private_urls=False)
    monkeypatch.setitem(app.state._state, "settings", strict)
    refused = await create(api, url)
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [(["input", "url"], "VALIDATION")]
    assert "public addresses" in refused["userErrors"][0]["message"]
    assert await rows(api) == []
    monkeypatch.undo()
    assert (await create(api, url))["userErrors"] == []  # the test settings allow them


async def test_update_changes_what_is_given_and_refuses_bad_input_whole(api: Api) -> None:
    endpoint = (await create(api, "https://example.com/a"))["endpoint"]
    updated = (await api.gql(UPDATE, input={"id": endpoint["id"], "enabled": False}))["updateWebhookEndpoint"]
    assert updated["userErrors"] == []
    assert (updated["endpoint"]["enabled"], updated["endpoint"]["url"]) == (False, "https://example.com/a")
    before = await rows(api)
    bad = (await api.gql(UPDATE, input={"id": endpoint["id"], "url": "nope", "events": []}))["updateWebhookEndpoint"]
    assert [e["field"] for e in bad["userErrors"]] == [["input", "url"], ["input", "events"]]
    assert await rows(api) == before
    missing = (await api.gql(UPDATE, input={"id": "bm9wZQ", "enabled": True}))["updateWebhookEndpoint"]
    assert [(e["field"], e["code"]) for e in missing["userErrors"]] == [(["input", "id"], "NOT_FOUND")]
    moved = await api.gql(
        UPDATE, input={"id": endpoint["id"], "url": "https://example.org/b", "events": ["CAMPAIGN_COMPLETED"]}
    )
    assert moved["updateWebhookEndpoint"]["endpoint"]["url"] == "https://example.org/b"
    assert moved["updateWebhookEndpoint"]["endpoint"]["events"] == ["CAMPAIGN_COMPLETED"]


async def test_another_workspaces_endpoint_is_not_found_everywhere(api: Api, other_api: Api) -> None:
    theirs = (await create(other_api, "https://example.com/theirs"))["endpoint"]["id"]
    assert (await api.gql(LOG))["webhookEndpoints"] == []
    for document, variables in (
        (UPDATE, {"input": {"id": theirs, "enabled": False}}),
        (ROTATE, {"id": theirs}),
        (DELETE, {"id": theirs}),
        (TEST, {"id": theirs}),
    ):
        data = await api.gql(document, **variables)
        (payload,) = data.values()
        assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"], (document, payload)
    assert (await api.gql("query($id: ID!) { node(id: $id) { id } }", id=theirs))["node"] is None
    assert (
        len(await rows(other_api)) == 1 and await WebhookDelivery.filter(endpoint__url__contains="theirs").count() == 0
    )


async def test_send_test_webhook_is_delivered_signed_and_shows_in_the_log(api: Api) -> None:
    async with receiver() as hook:
        made = await create(api, hook.url)
        queued = (await api.gql(TEST, id=made["endpoint"]["id"]))["sendTestWebhook"]
        assert queued["userErrors"] == []
        assert (queued["delivery"]["eventType"], queued["delivery"]["status"]) == ("WEBHOOK_TEST", "PENDING")
        async with dispatching():
            await until(lambda: len(hook.received) == 1, what="the test event arrived")

            async def logged() -> bool:
                log = (await api.gql(LOG))["webhookEndpoints"][0]["deliveries"]
                return bool(log) and log[0]["status"] == "DELIVERED"

            await until(logged, what="the log says DELIVERED")
    (delivery,) = (await api.gql(LOG))["webhookEndpoints"][0]["deliveries"]
    (request,) = hook.received
    assert delivery["eventId"] == request.event["id"] == queued["delivery"]["eventId"]
    assert delivery["payload"].encode() == request.body and request.event["type"] == "webhook.test"
    assert (delivery["attempts"], delivery["lastStatusCode"], delivery["lastError"]) == (1, 200, None)
    assert delivery["nextAttemptAt"] is None and delivery["deliveredAt"] is not None and delivery["campaignId"] is None
    assert wh.verify(made["secret"], request.headers["campaigns-signature"], request.body, time.time())


async def test_the_log_shows_a_failing_endpoints_status_code_error_and_next_attempt(api: Api) -> None:
    async with receiver(default=500) as hook:
        made = await create(api, hook.url)
        campaign = await api.create_campaign()
        async with dispatching(policy=wh.RetryPolicy()):  # the real schedule: next attempt in ~10 s
            await until(lambda: len(hook.received) == 1, what="the first attempt")
            await until(lambda: WebhookDelivery.filter(last_status_code=500).exists(), what="its outcome is recorded")
    (delivery,) = (await api.gql(LOG, status="PENDING"))["webhookEndpoints"][0]["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["lastStatusCode"]) == ("PENDING", 1, 500)
    assert delivery["lastError"] == "HTTP 500: no" and delivery["campaignId"] == campaign["id"]
    assert delivery["nextAttemptAt"] > delivery["lastAttemptAt"]
    assert (await api.gql(LOG, status="DELIVERED"))["webhookEndpoints"][0]["deliveries"] == []
    assert made["endpoint"]["id"] == (await api.gql(LOG))["webhookEndpoints"][0]["id"]


async def test_rotating_the_secret_signs_the_next_delivery_with_the_new_one(api: Api) -> None:
    async with receiver() as hook:
        made = await create(api, hook.url)
        rotated = (await api.gql(ROTATE, id=made["endpoint"]["id"]))["rotateWebhookSecret"]
        assert rotated["userErrors"] == [] and rotated["secret"] != made["secret"]
        await api.gql(TEST, id=made["endpoint"]["id"])
        async with dispatching():
            await until(lambda: len(hook.received) == 1, what="delivered")
    (request,) = hook.received
    header = request.headers["campaigns-signature"]
    assert wh.verify(rotated["secret"], header, request.body, time.time())
    assert not wh.verify(made["secret"], header, request.body, time.time())


async def test_deleting_an_endpoint_removes_it_and_its_log(api: Api) -> None:
    made = await create(api, "https://example.com/gone")
    await api.gql(TEST, id=made["endpoint"]["id"])
    deleted = (await api.gql(DELETE, id=made["endpoint"]["id"]))["deleteWebhookEndpoint"]
    assert deleted == {"deletedId": made["endpoint"]["id"], "userErrors": []}
    assert await rows(api) == [] and await WebhookDelivery.filter(endpoint__url="https://example.com/gone").count() == 0
    again = (await api.gql(DELETE, id=made["endpoint"]["id"]))["deleteWebhookEndpoint"]
    assert [e["code"] for e in again["userErrors"]] == ["NOT_FOUND"]


async def test_a_log_page_larger_than_the_limit_is_a_validation_error(api: Api) -> None:
    await create(api, "https://example.com/a")
    body = await api.raw("{ webhookEndpoints { deliveries(first: 101) { id } } }")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["VALIDATION"]
    assert "first" in body["errors"][0]["message"]


def test_the_test_settings_allow_private_targets(settings: Settings) -> None:
    assert settings.webhook_allow_private_urls and not Settings().webhook_allow_private_urls
