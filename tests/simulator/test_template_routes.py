"""The simulator's template controls (simulator/template_routes.py) over real HTTP: list
every WABA's or one's, add one (201 new, 200 the same, 400 naming a bad field, 409 a
contradiction, 404 an unknown WABA), read and delete one (a DELETED webhook; its sends
then answer 132001), and the status route's bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from simulator import SimulatorConfig
from simulator.numbers import PhoneNumber
from tests.simulator.conftest import Receiver, Sim, assert_error, phone, running, second_number, template

WABA = "200000000000001"
WELCOME = {"name": "welcome", "language": "en", "category": "UTILITY", "body": "Welcome, {{1}}!"}


async def call(sim: Sim, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with sim.http.request(method, f"{sim.url}/_simulator/{path}", json=body) as r:
        return r.status, await r.json()


async def test_templates_are_listed_for_every_waba_and_for_one() -> None:
    async with running(SimulatorConfig(numbers=(PhoneNumber.from_json(second_number()),))) as sim:
        status, every = await call(sim, "GET", "templates")
        _, second = await call(sim, "GET", "templates/200000000000002")
        missing, error = await call(sim, "GET", "templates/999")
    assert status == 200
    assert [(t["waba_id"], t["name"], t["language"]) for t in every["templates"]] == [
        (WABA, "hello_world", "en_US"),
        (WABA, "spring_sale", "en_US"),
        (WABA, "spring_sale", "es"),
        (WABA, "order_update", "en_US"),
        ("200000000000002", "hello_world", "en_US"),
    ]
    assert second["waba_id"] == "200000000000002" and [t["name"] for t in second["templates"]] == ["hello_world"]
    assert missing == 404 and "999" in error["error"]


async def test_a_template_is_added_once_and_then_sent() -> None:
    async with running() as sim:
        created, body = await call(sim, "POST", f"templates/{WABA}", WELCOME)
        again, same = await call(sim, "POST", f"templates/{WABA}", WELCOME)
        clash, error = await call(sim, "POST", f"templates/{WABA}", WELCOME | {"category": "MARKETING"})
        _, read = await call(sim, "GET", f"templates/{WABA}/welcome/en")
        payload = template(phone(1), name="welcome", parameters=("Ada",))
        payload["template"]["language"]["code"] = "en"
        reply = await sim.send(payload)
    assert (created, body["created"], again, same["created"], clash) == (201, True, 200, False, 409)
    assert "welcome (en)" in error["error"]
    assert read == body["template"] and read["status"] == "APPROVED" and read["waba_id"] == WABA
    assert reply.status == 200


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ([WELCOME], "JSON object"),
        (WELCOME | {"category": "PROMO"}, "category"),
        (WELCOME | {"waba_id": "200000000000002"}, "waba_id"),
        ({k: v for k, v in WELCOME.items() if k != "body"}, "components or body"),
    ],
)
async def test_a_bad_template_is_refused_with_400_naming_the_field(body: Any, named: str) -> None:
    async with running() as sim:
        status, error = await call(sim, "POST", f"templates/{WABA}", body)
        _, listed = await call(sim, "GET", f"templates/{WABA}")
    assert status == 400 and named in error["error"]
    assert "welcome" not in [t["name"] for t in listed["templates"]]  # nothing written


async def test_a_template_is_added_only_to_a_waba_with_a_number() -> None:
    async with running() as sim:
        status, error = await call(sim, "POST", "templates/999", WELCOME)
    assert status == 404 and "register a number" in error["error"]


async def test_a_deleted_template_is_posted_and_no_longer_sent(receiver: Receiver) -> None:
    async with running(SimulatorConfig(webhook_url=receiver.url)) as sim:
        status, body = await call(sim, "DELETE", f"templates/{WABA}/spring_sale/es")
        quiet, silent = await call(sim, "DELETE", f"templates/{WABA}/order_update/en_US?webhook=false")
        gone, _ = await call(sim, "GET", f"templates/{WABA}/spring_sale/es")
        payload = template(phone(1))
        payload["template"]["language"]["code"] = "es"
        reply = await sim.send(payload)
        async with asyncio.timeout(5):
            await sim.simulator.webhooks.drain()
    assert (status, body["posted"], body["removed"]["name"], gone) == (200, True, "spring_sale", 404)
    assert (quiet, silent["posted"]) == (200, False)
    assert_error(reply, 400, 132001)
    [post] = receiver.posts
    [change] = post["entry"][0]["changes"]
    assert change["field"] == "message_template_status_update"
    assert (change["value"]["event"], change["value"]["message_template_language"]) == ("DELETED", "es")


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("spring_sale/en_US/status", {"status": "LIVE"}, 400, "status must be one of"),
        ("spring_sale/en_US/status", {"status": "PAUSED", "event": "SNOOZED"}, 400, "event must be one of"),
        ("spring_sale/en_US/status", {"status": "PAUSED", "reason": 3}, 400, "reason"),
        ("spring_sale/en_US/status", {"status": "PAUSED", "other_info": {"title": 1}}, 400, "other_info"),
        ("spring_sale/en_US/status", ["PAUSED"], 400, "JSON object"),
        ("spring_sale/fr/status", {"status": "PAUSED"}, 404, "no template spring_sale in fr"),
    ],
)
async def test_a_bad_status_change_is_refused_and_changes_nothing(
    path: str, body: Any, status: int, words: str
) -> None:
    async with running() as sim:
        answered, error = await call(sim, "POST", f"templates/{WABA}/{path}", body)
        _, sale = await call(sim, "GET", f"templates/{WABA}/spring_sale/en_US")
    assert answered == status and words in error["error"]
    assert sale["status"] == "APPROVED"
