"""What people do, in the simulator (simulator/engine.py's `people` part and the
`/_simulator/user_preferences` and `/_simulator/inbound` controls of simulator/app.py):
a user who stops marketing messages has them refused with 131050 (by a `failed` status,
as Meta reports it, or at once), a resume lifts it, and both, like an inbound text,
reach the receiver as Meta's signed webhooks. Over real HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

from simulator import SimulatorConfig
from tests.simulator.conftest import Receiver, Sim, assert_error, phone, running, second_number, template, text

FAST: dict[str, Any] = {
    "sent_delay_ms": (5.0, 20.0),
    "delivered_delay_ms": (20.0, 60.0),
    "read_delay_ms": (10.0, 40.0),
    "webhook_flush_ms": 10.0,
    "late_probability": 0.0,
    "duplicate_webhook_probability": 0.0,
}


async def control(sim: Sim, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    async with sim.http.post(f"{sim.url}/_simulator/{path}", json=body) as r:
        return r.status, await r.json()


def changes(receiver: Receiver, field: str) -> list[dict[str, Any]]:
    return [c for post in receiver.posts for e in post["entry"] for c in e["changes"] if c["field"] == field]


def statuses(receiver: Receiver) -> list[dict[str, Any]]:
    """Statuses only (Receiver.statuses expects every change to be statuses)."""
    return [s for c in changes(receiver, "messages") for s in c["value"].get("statuses", [])]


async def drained(sim: Sim) -> None:
    async with asyncio.timeout(5):
        await sim.simulator.webhooks.drain()


async def test_a_stopped_user_gets_a_failed_131050_status_until_they_resume(receiver: Receiver) -> None:
    config = SimulatorConfig(webhook_url=receiver.url, delivered_probability=1.0, **FAST)
    user = phone(1).lstrip("+")
    async with running(config) as sim:
        status, body = await control(sim, "user_preferences", {"wa_id": user, "value": "stop", "detail": "Stop promos"})
        assert (status, body) == (200, {"wa_id": user, "opted_out": True, "posted": True})
        refused = await sim.send(template(phone(1), callback="c1:m1:r0"), key="k1")
        assert refused.status == 200  # accepted, as Meta accepts it ...
        other = await sim.send(template(phone(2), callback="c1:m2:r0"), key="k2")
        await drained(sim)
        by_id = {s["id"]: s for s in statuses(receiver)}
        failed = by_id[refused.body["messages"][0]["id"]]
        assert failed["status"] == "failed" and failed["errors"][0]["code"] == 131050  # ... then fails it
        assert "pricing" not in failed  # never billed
        assert next(s["status"] for s in statuses(receiver) if s["id"] == other.body["messages"][0]["id"]) == "sent"
        ledger = await sim.ledger()
        assert ledger["opted_out"] == {config.waba_id: [user]} and ledger["refused_opted_out"] == 1
        assert ledger["campaigns"]["1"]["final"]["failed"] == 1
        # the webhook the receiver got first: Meta's user_preferences change
        [change] = changes(receiver, "user_preferences")
        value = change["value"]
        assert value["metadata"]["phone_number_id"] == config.phone_number_id
        [preference] = value["user_preferences"]
        assert preference | {"timestamp": 0} == {
            "wa_id": user,
            "category": "marketing_messages",
            "value": "stop",
            "detail": "Stop promos",
            "timestamp": 0,
        }
        assert isinstance(preference["timestamp"], int)
        _, body = await control(sim, "user_preferences", {"wa_id": user, "value": "resume"})
        assert body["opted_out"] is False
        again = await sim.send(template(phone(1), callback="c1:m3:r0"), key="k3")
        await drained(sim)
        assert {s["status"] for s in statuses(receiver) if s["id"] == again.body["messages"][0]["id"]} >= {"sent"}
        assert [c["value"]["user_preferences"][0]["value"] for c in changes(receiver, "user_preferences")] == [
            "stop",
            "resume",
        ]
    assert receiver.bad_signatures == 0


async def test_the_refusal_can_be_the_sends_answer_and_only_marketing_is_refused(receiver: Receiver) -> None:
    user = phone(3).lstrip("+")
    async with running(SimulatorConfig(webhook_url=receiver.url, opted_out_answer="error", **FAST)) as sim:
        await control(sim, "user_preferences", {"wa_id": user, "value": "stop", "webhook": False})
        assert_error(await sim.send(text(phone(3), callback="c2:m1:r0")), 400, 131050)
        await drained(sim)
        assert changes(receiver, "user_preferences") == []  # told the ledger only
    async with running(SimulatorConfig(webhook_url=receiver.url, pricing_category="utility", **FAST)) as sim:
        await control(sim, "user_preferences", {"wa_id": user, "value": "stop", "webhook": False})
        accepted = await sim.send(text(phone(3), callback="c3:m1:r0"))
        await drained(sim)
        sent = [
            s for s in statuses(receiver) if s["id"] == accepted.body["messages"][0]["id"] and s["status"] == "sent"
        ]
        assert sent and sent[0]["pricing"] == {
            "billable": True,
            "pricing_model": "PMP",
            "type": "regular",
            "category": "utility",
        }


async def test_a_stop_is_the_business_of_one_waba(receiver: Receiver) -> None:
    user = phone(4).lstrip("+")
    async with running(SimulatorConfig(webhook_url=receiver.url, **FAST)) as sim:
        assert (await sim.register(**second_number())).status == 201
        _, body = await control(
            sim, "user_preferences", {"wa_id": user, "value": "stop", "phone_number_id": "100000000000002"}
        )
        assert body["opted_out"] is True
        assert not sim.simulator.stopped_marketing(sim.simulator.config.number, user)
        await drained(sim)
        [change] = changes(receiver, "user_preferences")
        assert change["value"]["metadata"]["phone_number_id"] == "100000000000002"


async def test_an_inbound_text_is_posted_as_metas_messages_webhook(receiver: Receiver) -> None:
    async with running(SimulatorConfig(webhook_url=receiver.url, **FAST)) as sim:
        status, body = await control(sim, "inbound", {"from": phone(5), "text": " STOP ", "name": "Ann"})
        assert status == 200 and body["id"].startswith("wamid.")
        await drained(sim)
        [change] = changes(receiver, "messages")
        value = change["value"]
        assert value["contacts"] == [{"profile": {"name": "Ann"}, "wa_id": phone(5).lstrip("+")}]
        [message] = value["messages"]
        assert (message["from"], message["id"], message["type"], message["text"]) == (
            phone(5).lstrip("+"),
            body["id"],
            "text",
            {"body": " STOP "},
        )
        assert message["timestamp"].isdigit() and "statuses" not in value
        assert (await sim.ledger())["inbound_messages"] == 1
    assert receiver.bad_signatures == 0


async def test_controls_refuse_bad_bodies_naming_what_is_wrong() -> None:
    async with running(SimulatorConfig(**FAST)) as sim:
        for path, body, expected in (
            ("user_preferences", {"wa_id": "abc", "value": "stop"}, "wa_id"),
            ("user_preferences", {"wa_id": "14155550100", "value": "pause"}, "value"),
            ("user_preferences", {"wa_id": "14155550100", "value": "stop", "detail": 3}, "detail"),
            ("user_preferences", ["not", "an", "object"], "JSON object"),
            ("inbound", {"from": "14155550100"}, "text"),
            ("inbound", {"from": "14155550100", "text": "x" * 4097}, "text"),
            ("inbound", {"from": "14155550100", "text": "hi", "phone_number_id": "999"}, "999"),
        ):
            status, answer = await control(sim, path, body)
            assert status in (400, 404) and expected in answer["error"], (path, body, answer)
        # no receiver: nothing to post an inbound message to
        status, answer = await control(sim, "inbound", {"from": "14155550100", "text": "hi"})
        assert status == 409 and "receiver" in answer["error"]
        async with sim.http.post(f"{sim.url}/_simulator/inbound", data=b"{") as r:
            assert r.status == 400
