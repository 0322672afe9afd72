"""What the Cloud API does with templates (simulator/template_api.py), over real HTTP:
template sends checked against the number's WABA with Meta's codes and their body
rendered into the ledger, `GET /{version}/{waba_id}/message_templates` with Graph's token
checks, fields, filters, cursor paging and hourly budget, and each status change posted
as a signed `message_template_status_update` webhook."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from simulator import SimulatorConfig
from simulator.numbers import PhoneNumber
from tests.simulator.conftest import (
    TOKEN,
    Receiver,
    Reply,
    Sim,
    assert_error,
    assert_graph_error,
    phone,
    running,
    second_number,
    template,
)

WABA = "200000000000001"


def send_of(name: str, language: str = "en_US", *parameters: dict[str, Any], kind: str = "body") -> dict[str, Any]:
    payload = template(phone(1), name=name, callback="c5:m1")
    payload["template"]["language"]["code"] = language
    payload["template"]["components"] = [{"type": kind, "parameters": list(parameters)}] if parameters else []
    return payload


def text(value: str, name: str | None = None) -> dict[str, Any]:
    return {"type": "text", "text": value} | ({"parameter_name": name} if name is not None else {})


async def listing(sim: Sim, waba: str = WABA, token: str | None = TOKEN, **params: str) -> Reply:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with sim.http.get(f"{sim.url}/v26.0/{waba}/message_templates", params=params, headers=headers) as r:
        return Reply(r.status, await r.json(), dict(r.headers))


async def sent(sim: Sim) -> list[dict[str, Any]]:
    async with sim.http.get(f"{sim.url}/_simulator/ledger/messages") as r:
        return (await r.json())["messages"]


async def change_status(sim: Sim, name: str, language: str, **body: Any) -> tuple[int, dict[str, Any]]:
    url = f"{sim.url}/_simulator/templates/{WABA}/{name}/{language}/status"
    async with sim.http.post(url, json=body) as r:
        return r.status, await r.json()


def template_changes(receiver: Receiver) -> list[tuple[str, dict[str, Any]]]:
    """(entry id, value) of every message_template_status_update received."""
    return [
        (entry["id"], change["value"])
        for post in receiver.posts
        for entry in post["entry"]
        for change in entry["changes"]
        if change["field"] == "message_template_status_update"
    ]


async def drained(sim: Sim) -> None:
    async with asyncio.timeout(5):
        await sim.simulator.webhooks.drain()


# --- sends ------------------------------------------------------------------------------


async def test_positional_named_and_parameterless_sends_go_out_rendered() -> None:
    async with running() as sim:
        sale = await sim.send(send_of("spring_sale", "en_US", text("Ada"), text("20%")))
        order = await sim.send(send_of("order_update", "en_US", text("A-7", "order_id"), text("Bo", "first_name")))
        hello = await sim.send(send_of("hello_world"))
        spanish = await sim.send(send_of("spring_sale", "es", text("Eva"), text("30%")))
        assert [r.status for r in (sale, order, hello, spanish)] == [200, 200, 200, 200]
        records = {(m["template"]["name"], m["template"]["language"]): m["template"]["body"] for m in await sent(sim)}
    assert records["spring_sale", "en_US"] == "Hi Ada, our spring sale is on: 20% off everything until Sunday."
    assert records["order_update", "en_US"] == "Hi Bo, your order A-7 is on its way."  # by name, in any order
    assert records["hello_world", "en_US"].startswith("Welcome and congratulations!!")
    assert records["spring_sale", "es"].startswith("Hola Eva, llegan las rebajas de primavera: 30%")


async def test_a_currency_parameter_renders_as_its_fallback_value() -> None:
    money = {"type": "currency", "currency": {"fallback_value": "$5.00", "code": "USD", "amount_1000": 5000}}
    async with running() as sim:
        reply = await sim.send(send_of("spring_sale", "en_US", text("Ada"), money))
        [record] = await sent(sim)
    assert reply.status == 200 and "is on: $5.00 off" in record["template"]["body"]


@pytest.mark.parametrize(
    ("payload", "code", "message", "details"),
    [
        (send_of("autumn_sale"), 132001, "Template name does not exist in the translation", "(autumn_sale)"),
        (send_of("spring_sale", "fr", text("A"), text("B")), 132001, "does not exist in the", "does not exist in fr"),
        (
            send_of("spring_sale", "en_US", text("Ada")),
            132000,
            "Number of parameters does not match the expected number of params",
            "body: number of localizable_params (1) does not match the expected number of params (2)",
        ),
        (send_of("spring_sale"), 132000, "Number of parameters", "localizable_params (0)"),
        (send_of("hello_world", "en_US", text("x"), kind="header"), 132000, "Number of parameters", "header:"),
        (
            send_of("spring_sale", "en_US", text("Ada", "first_name"), text("20%", "discount")),
            132012,
            "Parameter format does not match format in the created template",
            "expected POSITIONAL parameters, received NAMED",
        ),
        (
            send_of("spring_sale", "en_US", text("Ada"), {"type": "image", "image": {"link": "https://x/y.png"}}),
            132012,
            "Parameter format does not match",
            "body: Format mismatch, expected TEXT, received IMAGE",
        ),
        (
            send_of("order_update", "en_US", text("Ada"), text("A-7")),
            100,
            "Invalid parameter",
            "Parameter name is missing or empty",
        ),
        (
            send_of("order_update", "en_US", text("Ada", "first_name")),
            132000,
            "Number of parameters",
            "localizable_params (1) does not match the expected number of params (2)",
        ),
        (
            send_of("order_update", "en_US", text("Ada", "first_name"), text("A-7", "order_no")),
            132000,
            "Number of parameters",
            "parameter name (order_no) is not the template's (expected: first_name, order_id)",
        ),
        (
            send_of("order_update", "en_US", text("Ada", "first_name"), text("Bo", "first_name")),
            132000,
            "Number of parameters",
            "parameter name (first_name) is given twice",
        ),
    ],
)
async def test_a_send_the_template_does_not_allow_is_refused_with_metas_code(
    payload: dict[str, Any], code: int, message: str, details: str
) -> None:
    async with running() as sim:
        reply = await sim.send(payload)
        ledger = await sim.ledger()
    error = assert_error(reply, 400, code)
    assert message in error["message"] and error["message"].startswith(f"(#{code}) ")
    assert details in error["error_data"]["details"]
    assert ledger["campaigns"]["5"]["immediate_errors"] == {str(code): 1}
    assert ledger["campaigns"]["5"]["final"]["rejected"] == 1 and ledger["accepted"] == 0


@pytest.mark.parametrize(
    ("status", "code", "details"),
    [
        ("PAUSED", 132015, "paused due to low quality"),
        ("DISABLED", 132016, "permanently disabled"),
        ("PENDING", 132001, "is PENDING, not APPROVED"),
        ("REJECTED", 132001, "is REJECTED, not APPROVED"),
        ("IN_APPEAL", 132001, "is IN_APPEAL"),
    ],
)
async def test_a_template_that_is_not_approved_is_refused(status: str, code: int, details: str) -> None:
    async with running() as sim:
        changed, _ = await change_status(sim, "spring_sale", "en_US", status=status)
        reply = await sim.send(send_of("spring_sale", "en_US", text("Ada"), text("20%")))
    assert changed == 200
    assert details in assert_error(reply, 400, code)["error_data"]["details"]


async def test_each_wabas_templates_are_its_own() -> None:
    async with running(SimulatorConfig(numbers=(PhoneNumber.from_json(second_number()),))) as sim:
        other = "100000000000002"
        refused = await sim.send(
            send_of("spring_sale", "en_US", text("Ada"), text("20%")), phone_number_id=other, token="token-2"
        )
        hello = await sim.send(send_of("hello_world"), phone_number_id=other, token="token-2")
    assert "(spring_sale) does not exist" in assert_error(refused, 400, 132001)["error_data"]["details"]
    assert hello.status == 200


async def test_samples_can_be_left_out_and_templates_come_from_the_config() -> None:
    config = SimulatorConfig.from_env(
        env={
            "SIMULATOR_SAMPLE_TEMPLATES": "false",
            "SIMULATOR_TEMPLATES": '[{"name": "welcome", "language": "en", "category": "UTILITY", "body": "Hi {{1}}"}]',
        }
    )
    async with running(config) as sim:
        samples = await sim.send(send_of("spring_sale", "en_US", text("Ada"), text("20%")))
        welcome = await sim.send(send_of("welcome", "en", text("Ada")))
        [record] = await sent(sim)
    assert_error(samples, 400, 132001)
    assert welcome.status == 200 and record["template"] == {"name": "welcome", "language": "en", "body": "Hi Ada"}


# --- listing ----------------------------------------------------------------------------


async def test_the_listing_is_metas_shape_with_default_fields() -> None:
    async with running() as sim:
        reply = await listing(sim)
    assert reply.status == 200
    names = [(t["name"], t["language"]) for t in reply.body["data"]]
    assert names == [
        ("hello_world", "en_US"),
        ("spring_sale", "en_US"),
        ("spring_sale", "es"),
        ("order_update", "en_US"),
    ]
    order = reply.body["data"][3]
    assert list(order) == ["name", "parameter_format", "components", "language", "status", "category", "id"]
    assert order["parameter_format"] == "NAMED" and order["status"] == "APPROVED" and order["id"].isdigit()
    assert order["components"][0]["text"] == "Hi {{first_name}}, your order {{order_id}} is on its way."
    assert set(reply.body["paging"]["cursors"]) == {"before", "after"} and "next" not in reply.body["paging"]


async def test_fields_filters_and_summary_are_honoured() -> None:
    async with running() as sim:
        few = await listing(sim, fields="name,status,components{type,text}")
        marketing = await listing(sim, category="MARKETING", summary="total_count")
        spanish = await listing(sim, language="es")
        named = await listing(sim, name="ORDER")
        await change_status(sim, "spring_sale", "es", status="PAUSED", webhook=False)
        paused = await listing(sim, status="PAUSED,DISABLED", fields="name,language")
    assert list(few.body["data"][0]) == ["name", "status", "components", "id"]
    assert [t["language"] for t in marketing.body["data"]] == ["en_US", "es"]
    assert marketing.body["summary"] == {"total_count": 2}
    assert [t["name"] for t in spanish.body["data"]] == ["spring_sale"]
    assert [t["name"] for t in named.body["data"]] == ["order_update"]
    assert paused.body["data"] == [{"name": "spring_sale", "language": "es", "id": paused.body["data"][0]["id"]}]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"fields": "name,colour"}, "nonexisting field (colour) on node type (WhatsAppBusinessHSM)"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"status": "LIVE"}, "Param status must be one of"),
        ({"category": "PROMO"}, "Param category must be one of"),
        ({"after": "bm90LWEtY3Vyc29y"}, "after cursor"),
    ],
)
async def test_a_bad_listing_query_is_refused_with_code_100(params: dict[str, str], words: str) -> None:
    async with running() as sim:
        reply = await listing(sim, **params)
    assert words in assert_graph_error(reply, 400, 100)["message"]


async def test_limit_and_cursors_page_through_everything_once() -> None:
    async with running() as sim:
        first = await listing(sim, limit="3", fields="name,language")
        async with sim.http.get(first.body["paging"]["next"], headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            second = await r.json()
        back = await listing(sim, limit="3", before=second["paging"]["cursors"]["before"])
    assert len(first.body["data"]) == 3 and "previous" not in first.body["paging"]
    assert [t["name"] for t in second["data"]] == ["order_update"] and "next" not in second["paging"]
    assert list(second["data"][0]) == ["name", "language", "id"]  # the next link keeps the fields
    assert second["paging"]["previous"]
    assert [t["id"] for t in back.body["data"]] == [t["id"] for t in first.body["data"]]


async def test_an_empty_listing_is_just_empty_data() -> None:
    async with running() as sim:
        reply = await listing(sim, status="DELETED")
    assert reply.body == {"data": []}


async def test_the_listing_checks_the_token_as_graph_does() -> None:
    async with running(SimulatorConfig(numbers=(PhoneNumber.from_json(second_number()),))) as sim:
        missing = await listing(sim, token=None)
        invalid = await listing(sim, token="not-a-token")
        other_wabas = await listing(sim, token="token-2")
        a_number = await listing(sim, waba="100000000000001")
        own = await listing(sim, waba="200000000000002", token="token-2")
        async with sim.http.get(f"{sim.url}/v26.0/{WABA}/message_templates", params={"access_token": TOKEN}) as r:
            by_query = r.status
    assert_graph_error(missing, 400, 104)
    assert_graph_error(invalid, 401, 190)
    error = assert_graph_error(other_wabas, 400, 100, "GraphMethodException", 33)
    assert error["message"].startswith(f"Unsupported get request. Object with ID '{WABA}' does not exist")
    assert_graph_error(a_number, 400, 100, "GraphMethodException", 33)
    assert [t["name"] for t in own.body["data"]] == ["hello_world"]
    assert by_query == 200


async def test_the_listing_has_an_hourly_budget_per_waba_that_reset_restores() -> None:
    async with running(
        SimulatorConfig(templates_rate_limit_per_hour=2, numbers=(PhoneNumber.from_json(second_number()),))
    ) as sim:
        allowed = [await listing(sim) for _ in range(2)]
        over = await listing(sim)
        others = await listing(sim, waba="200000000000002", token="token-2")
        async with sim.http.post(f"{sim.url}/_simulator/reset") as r:
            assert r.status == 200
        again = await listing(sim)
    assert [r.status for r in allowed] == [200, 200]
    assert "rate limit" in assert_error(over, 400, 80007)["error_data"]["details"]
    assert others.status == 200 and again.status == 200


# --- status changes ---------------------------------------------------------------------


async def test_a_pause_is_posted_signed_and_refuses_sends_until_the_unpause(receiver: Receiver) -> None:
    async with running(SimulatorConfig(webhook_url=receiver.url)) as sim:
        status, body = await change_status(sim, "spring_sale", "en_US", status="PAUSED")
        paused = await sim.send(send_of("spring_sale", "en_US", text("Ada"), text("20%")))
        await drained(sim)
        assert (status, body["posted"], body["event"], body["template"]["status"]) == (200, True, "PAUSED", "PAUSED")
        assert_error(paused, 400, 132015)
        _, body = await change_status(sim, "spring_sale", "en_US", status="APPROVED")
        resumed = await sim.send(send_of("spring_sale", "en_US", text("Ada"), text("20%")))
        await drained(sim)
    assert resumed.status == 200 and receiver.bad_signatures == 0
    [(waba, pause), (_, unpause)] = template_changes(receiver)
    template_id = int(body["template"]["id"])
    assert waba == WABA
    assert pause == {
        "event": "PAUSED",
        "message_template_id": template_id,
        "message_template_name": "spring_sale",
        "message_template_language": "en_US",
        "reason": "NONE",
        "message_template_category": "MARKETING",
        "other_info": {"title": "FIRST_PAUSE", "description": pause["other_info"]["description"]},
    }
    assert unpause["event"] == "APPROVED" and unpause["other_info"]["title"] == "UNPAUSE"
    entry = receiver.posts[0]["entry"][0]
    assert receiver.posts[0]["object"] == "whatsapp_business_account" and isinstance(entry["time"], int)


async def test_a_rejection_and_a_disable_carry_metas_extras(receiver: Receiver) -> None:
    async with running(SimulatorConfig(webhook_url=receiver.url)) as sim:
        await change_status(sim, "spring_sale", "es", status="REJECTED", reason="PROMOTIONAL")
        await change_status(
            sim,
            "order_update",
            "en_US",
            status="DISABLED",
            other_info={"title": "DISABLED", "description": "Too many."},
        )
        await change_status(sim, "order_update", "en_US", status="APPROVED", event="REINSTATED")
        quiet, body = await change_status(sim, "hello_world", "en_US", status="PAUSED", webhook=False)
        await drained(sim)
        rejected = (await listing(sim, name="spring", fields="language,rejected_reason")).body["data"]
    [(_, rejection), (_, disabled), (_, reinstated)] = template_changes(receiver)
    assert (rejection["event"], rejection["reason"], "other_info" in rejection) == ("REJECTED", "PROMOTIONAL", False)
    assert disabled["event"] == "DISABLED" and isinstance(disabled["disable_info"]["disable_date"], int)
    assert disabled["other_info"] == {"title": "DISABLED", "description": "Too many."}
    assert reinstated["event"] == "REINSTATED"
    assert (quiet, body["posted"], body["template"]["status"]) == (200, False, "PAUSED")
    assert [t["rejected_reason"] for t in rejected] == ["NONE", "PROMOTIONAL"]


async def test_without_a_receiver_a_status_still_changes() -> None:
    async with running() as sim:
        status, body = await change_status(sim, "spring_sale", "en_US", status="DISABLED")
        reply = await sim.send(send_of("spring_sale", "en_US", text("Ada"), text("20%")))
    assert (status, body["posted"]) == (200, False)
    assert_error(reply, 400, 132016)
