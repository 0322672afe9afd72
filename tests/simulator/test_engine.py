"""The simulator's send endpoint over real HTTP: answers, errors, determinism, rate limit,
idempotency and the ledger."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from simulator import Simulator, SimulatorConfig, create_simulator_app
from simulator.config import P99_3X_SIGMA
from simulator.fate import decide
from tests.simulator.conftest import PHONE_NUMBER_ID, Reply, Sim, phone, running, serve, text


def template(to: str, name: str = "spring_sale", callback: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}],
        },
    }
    if callback is not None:
        payload["biz_opaque_callback_data"] = callback
    return payload


def assert_error(reply: Reply, status: int, code: int) -> dict[str, Any]:
    """Meta's envelope: message, type, code, error_data{messaging_product, details}, fbtrace_id."""
    assert reply.status == status, reply
    error = reply.body["error"]
    assert error["code"] == code
    assert error["type"] == "OAuthException"
    assert isinstance(error["message"], str) and error["message"]
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert isinstance(error["error_data"]["details"], str)
    assert error["fbtrace_id"]
    return error


# --- answers ---------------------------------------------------------------------------


async def test_text_send_is_accepted_in_the_cloud_api_shape() -> None:
    async with running() as sim:
        reply = await sim.send(text("+14155550100", callback="c1:m1"), key="msg-1")
        ledger = await sim.ledger()
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.body["messaging_product"] == "whatsapp"
    assert reply.body["contacts"] == [{"input": "+14155550100", "wa_id": "14155550100"}]
    [message] = reply.body["messages"]
    assert message["id"].startswith("wamid.") and len(message["id"]) > 20
    assert message["message_status"] == "accepted"
    assert ledger["requests"] == 1 and ledger["accepted"] == 1
    assert ledger["campaigns"]["1"]["accepted"] == 1


async def test_template_send_is_accepted_and_any_version_segment_works() -> None:
    async with running() as sim:
        reply = await sim.send(template("14155550101"), key="msg-2", version="v18.0")
    assert reply.status == 200
    assert reply.body["contacts"] == [{"input": "14155550101", "wa_id": "14155550101"}]


async def test_wrong_or_missing_token_is_401_code_190() -> None:
    async with running() as sim:
        wrong = await sim.send(text(phone(1)), token="nope")
        missing = await sim.send(text(phone(1)), token=None)
        ledger = await sim.ledger()
    for reply in (wrong, missing):
        error = assert_error(reply, 401, 190)
        assert error["message"] == "Invalid OAuth access token - Cannot parse access token"
    assert ledger["accepted"] == 0 and ledger["immediate_errors"] == {"190": 2}


async def test_wrong_phone_number_id_is_400_code_100() -> None:
    async with running() as sim:
        reply = await sim.send(text(phone(1)), phone_number_id="999")
    error = assert_error(reply, 400, 100)
    assert "999" in error["message"] and error["error_subcode"] == 33


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (b"{not json", "JSON"),
        (b"[1, 2]", "JSON object"),
        ({"to": "+14155550100", "type": "text", "text": {"body": "x"}}, "messaging_product"),
        ({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}, "to"),
        ({"messaging_product": "whatsapp", "to": "call me", "text": {"body": "x"}}, "to"),
        ({"messaging_product": "whatsapp", "to": "+14155550100", "type": "text", "text": {}}, "text['body']"),
        ({"messaging_product": "whatsapp", "to": "+14155550100", "type": "text"}, "text"),
        ({"messaging_product": "whatsapp", "to": "+14155550100", "type": "sticker"}, "type"),
        (
            {"messaging_product": "whatsapp", "to": "+14155550100", "type": "template", "template": {"name": "x"}},
            "template['language']",
        ),
        (
            {
                "messaging_product": "whatsapp",
                "to": "+14155550100",
                "type": "template",
                "template": {
                    "name": "x",
                    "language": {"code": "en"},
                    "components": [{"type": "body", "parameters": [{}]}],
                },
            },
            "template['components'][0]['parameters'][0]['type']",
        ),
    ],
)
async def test_malformed_body_is_400_code_100_naming_the_field(payload: Any, named: str) -> None:
    async with running() as sim:
        reply = await sim.send(payload)
    error = assert_error(reply, 400, 100)
    assert named in error["message"] and named in error["error_data"]["details"]


async def test_template_name_starting_with_bad_is_132001() -> None:
    async with running() as sim:
        reply = await sim.send(template(phone(1), name="bad_promo", callback="c3:m1"), key="msg-1")
        ledger = await sim.ledger()
    error = assert_error(reply, 400, 132001)
    assert error["message"] == "(#132001) Template name does not exist in the translation"
    assert "bad_promo" in error["error_data"]["details"]
    assert ledger["campaigns"]["3"]["immediate_errors"] == {"132001": 1}


# --- determinism -----------------------------------------------------------------------


def outcome(reply: Reply) -> tuple[int, Any]:
    if reply.status == 200:
        return 200, reply.body["messages"][0]["id"]
    return reply.status, reply.body["error"]["code"]


async def test_error_mix_outcomes_depend_on_seed_and_key_not_on_order() -> None:
    config = SimulatorConfig(seed=7, error_mix={"131026": 0.2, "131047": 0.1})
    keys = [f"msg-{i}" for i in range(80)]
    async with running(config) as sim:
        first = {k: outcome(await sim.send(text(phone(i)), key=k)) for i, k in enumerate(keys)}
    async with running(config) as sim:
        # Reversed and concurrent this time.
        replies = await asyncio.gather(*(sim.send(text(phone(i)), key=k) for i, k in reversed(list(enumerate(keys)))))
        second = {k: outcome(r) for k, r in zip(reversed(keys), replies, strict=True)}
        ledger = await sim.ledger()
    assert first == second
    codes = [o[1] for o in first.values() if o[0] != 200]
    assert {131026, 131047} <= set(codes), codes  # the mix shows (10 and 6 expected)
    assert ledger["immediate_errors"] == {str(c): codes.count(c) for c in set(codes)}
    assert ledger["accepted"] == 80 - len(codes)
    # The truth is computable without a server, and another seed gives other failures.
    assert all((decide(config, k, 0).error is None) == (o[0] == 200) for k, o in first.items())
    other = SimulatorConfig(seed=8, error_mix=config.error_mix)
    assert [decide(other, k, 0).error for k in keys] != [decide(config, k, 0).error for k in keys]


async def test_a_transient_error_is_not_replayed_a_retry_is_a_new_attempt() -> None:
    config = SimulatorConfig(seed=3, error_mix={"131056": 0.5}, honour_idempotency=True)
    key = next(f"msg-{i}" for i in range(100) if decide(config, f"msg-{i}", 0).error == "131056")
    async with running(config) as sim:
        replies = [await sim.send(text(phone(1), callback="c1:m1"), key=key) for _ in range(12)]
        ledger = await sim.ledger()
    assert_error(replies[0], 400, 131056)
    first_ok = next(i for i, r in enumerate(replies) if r.status == 200)
    assert all(r.status == 400 for r in replies[:first_ok])
    # Once accepted, the answer is replayed: one send, the rest replays.
    assert {r.body["messages"][0]["id"] for r in replies[first_ok:]} == {replies[first_ok].body["messages"][0]["id"]}
    assert ledger["accepted"] == 1 and ledger["replays"] == 11 - first_ok
    assert ledger["immediate_errors"] == {"131056": first_ok}


def test_latency_is_lognormal_with_the_configured_mean_and_p99_about_3x() -> None:
    config = SimulatorConfig(latency_mean_ms=50)
    samples = sorted(decide(config, f"k{i}", 0).latency_s for i in range(4000))
    mean = sum(samples) / len(samples)
    assert 0.045 < mean < 0.055
    assert 2.5 < samples[int(0.99 * len(samples))] / mean < 3.5
    assert SimulatorConfig().latency_jitter == P99_3X_SIGMA
    assert decide(SimulatorConfig(), "k", 0).latency_s == 0.0


async def test_latency_does_not_serialise_requests() -> None:
    async with running(SimulatorConfig(latency_mean_ms=200, latency_jitter=0)) as sim:
        started = time.monotonic()
        replies = await asyncio.gather(*(sim.send(text(phone(i)), key=f"msg-{i}") for i in range(30)))
        elapsed = time.monotonic() - started
    assert all(r.status == 200 for r in replies)
    assert 0.2 <= elapsed < 1.0, elapsed  # one after another would take 6 s


# --- rate limit ------------------------------------------------------------------------


async def test_above_the_rate_limit_answers_429_code_130429_with_retry_after() -> None:
    async with running(SimulatorConfig(rate_limit_per_second=10)) as sim:
        started = time.monotonic()
        replies = await asyncio.gather(*(sim.send(text(phone(i)), key=f"msg-{i}") for i in range(40)))
        elapsed = time.monotonic() - started
        limited = [i for i, r in enumerate(replies) if r.status == 429]
        ledger = await sim.ledger()
        await asyncio.sleep(0.25)  # a couple of tokens come back
        retry = await sim.send(text(phone(limited[0])), key=f"msg-{limited[0]}")
    accepted = [r for r in replies if r.status == 200]
    # One second of burst, then 10 tokens a second while the 40 requests arrive.
    assert 10 <= len(accepted) <= 10 + 10 * elapsed + 1, (len(accepted), elapsed)
    assert len(accepted) + len(limited) == 40
    error = assert_error(replies[limited[0]], 429, 130429)
    assert "130429" in error["message"]
    assert replies[limited[0]].headers["Retry-After"] == "1"
    assert ledger["rate_limited"] == len(limited) and ledger["accepted"] == len(accepted)
    # A rate-limited request was not sent, so its key is free: the retry is a real send.
    assert retry.status == 200


# --- idempotency -----------------------------------------------------------------------


async def test_idempotency_key_replays_the_first_answer() -> None:
    async with running(SimulatorConfig(honour_idempotency=True)) as sim:
        first = await sim.send(text(phone(1), callback="c9:m1"), key="msg-1")
        again = await sim.send(text(phone(1), callback="c9:m1"), key="msg-1")
        ledger = await sim.ledger()
    assert first.status == again.status == 200
    assert first.body == again.body
    assert ledger["accepted"] == 1 and ledger["replays"] == 1
    assert ledger["campaigns"]["9"]["accepted"] == 1
    assert ledger["campaigns"]["9"]["replays"] == 1
    assert ledger["campaigns"]["9"]["duplicate_sends"] == 0


async def test_concurrent_requests_with_one_key_wait_for_the_first() -> None:
    async with running(SimulatorConfig(latency_mean_ms=300, latency_jitter=0, honour_idempotency=True)) as sim:
        started = time.monotonic()
        a, b, c = await asyncio.gather(*(sim.send(text(phone(1), callback="c9:m1"), key="msg-1") for _ in range(3)))
        elapsed = time.monotonic() - started
        ledger = await sim.ledger()
    assert a.status == b.status == c.status == 200
    assert a.body == b.body == c.body
    assert ledger["accepted"] == 1 and ledger["replays"] == 2
    assert ledger["campaigns"]["9"]["duplicate_sends"] == 0
    assert 0.3 <= elapsed < 0.58, elapsed  # the waiters did not add their own latency


async def test_without_honouring_idempotency_a_resend_is_a_second_send() -> None:
    async with running(SimulatorConfig(honour_idempotency=False)) as sim:
        first = await sim.send(text(phone(1), callback="c9:m1"), key="msg-1")
        again = await sim.send(text(phone(1), callback="c9:m1"), key="msg-1")
        keyless = [await sim.send(text(phone(2), callback="c9:m2")) for _ in range(2)]
        ledger = await sim.ledger()
    ids = {r.body["messages"][0]["id"] for r in (first, again, *keyless)}
    assert len(ids) == 4
    assert ledger["accepted"] == 4 and ledger["replays"] == 0
    assert ledger["campaigns"]["9"]["duplicate_sends"] == 2


# --- ledger ----------------------------------------------------------------------------


async def test_ledger_per_campaign_counts_duplicate_sends() -> None:
    async with running(SimulatorConfig(delivered_probability=1.0, read_probability=0.0)) as sim:
        for i in range(5):
            await sim.send(text(phone(i), callback=f"c4:m{i}"), key=f"msg-{i}")
        # The same message under another key: a true duplicate send.
        await sim.send(text(phone(0), callback="c4:m0"), key="resend-0")
        # Another campaign with the same phone is no duplicate of campaign 4.
        await sim.send(text(phone(0), callback="c5:m100"), key="msg-100")
        ledger = await sim.ledger()
        async with sim.http.get(f"{sim.url}/_simulator/ledger/messages", params={"campaign": "4"}) as r:
            listing = await r.json()
        page = {"campaign": "4", "offset": "1", "limit": "2"}
        async with sim.http.get(f"{sim.url}/_simulator/ledger/messages", params=page) as r:
            paged = await r.json()
    four = ledger["campaigns"]["4"]
    assert four["accepted"] == 6
    assert four["distinct_message_ids"] == 5 and four["distinct_phones"] == 5
    assert four["duplicate_sends"] == 1
    assert four["duplicate_message_ids"] == 1 and four["duplicate_phones"] == 1
    assert four["final"] == {"sent": 0, "delivered": 5, "read": 0, "failed": 0, "rejected": 0}
    assert ledger["campaigns"]["5"]["duplicate_sends"] == 0
    assert listing["count"] == 6
    assert [m["key"] for m in listing["messages"]] == ["msg-0", "msg-1", "msg-2", "msg-3", "msg-4", "resend-0"]
    assert [m["key"] for m in paged["messages"]] == ["msg-1", "msg-2"] and paged["count"] == 6
    first = listing["messages"][0]
    assert first["message_id"] == 0 and first["to"] == phone(0) and first["wamid"].startswith("wamid.")
    assert first["at"] > 1e9


async def test_the_ledger_object_is_readable_in_process_and_reset_clears_it() -> None:
    async with running() as sim:
        first = await sim.send(text(phone(1), callback="c2:m1"), key="msg-1")
        assert sim.simulator.ledger.accepted == 1
        async with sim.http.post(f"{sim.url}/_simulator/reset") as r:
            assert r.status == 200
        ledger = await sim.ledger()
        assert ledger["accepted"] == 0 and ledger["requests"] == 0 and ledger["campaigns"] == {}
        # The key is forgotten too: the same message is sent again, not replayed.
        again = await sim.send(text(phone(1), callback="c2:m1"), key="msg-1")
        ledger = await sim.ledger()
    assert again.body == first.body  # same seed and key, same wamid
    assert ledger["accepted"] == 1 and ledger["replays"] == 0


def test_config_from_env() -> None:
    config = SimulatorConfig.from_env(
        env={
            "SIMULATOR_SEED": "42",
            "SIMULATOR_LATENCY_MS": "50",
            "SIMULATOR_RATE_LIMIT": "80",
            "SIMULATOR_WEBHOOK_URL": "http://127.0.0.1:8000/webhooks/whatsapp",
            "SIMULATOR_ERROR_MIX": "131026=0.02,131047=0.01",
            "SIMULATOR_DELIVERED_DELAY_MS": "300-2000",
            "SIMULATOR_HONOUR_IDEMPOTENCY": "false",
            "OTHER_SEED": "9",
        }
    )
    assert config.seed == 42 and config.latency_mean_ms == 50 and config.rate_limit_per_second == 80
    assert config.webhook_url == "http://127.0.0.1:8000/webhooks/whatsapp"
    assert dict(config.error_mix) == {"131026": 0.02, "131047": 0.01}
    assert config.delivered_delay_ms == (300.0, 2000.0)
    assert config.honour_idempotency is False
    assert config.phone_number_id == PHONE_NUMBER_ID
    assert SimulatorConfig.from_env(env={}) == SimulatorConfig()
    with pytest.raises(ValueError, match="more than 1"):
        SimulatorConfig(error_mix={"131026": 0.7, "131047": 0.6})


async def test_the_app_works_mounted_under_a_prefix() -> None:
    app = create_simulator_app(SimulatorConfig())
    outer = Starlette(routes=[Mount("/simulator", app=app)])
    simulator: Simulator = app.state.simulator
    await simulator.start()  # a mounted app's lifespan does not run: its host starts it
    try:
        async with serve(outer) as url, aiohttp.ClientSession() as http:
            sim = Sim(f"{url}/simulator", simulator, http)
            reply = await sim.send(text(phone(1), callback="c1:m1"), key="msg-1")
            ledger = await sim.ledger()
    finally:
        await simulator.stop()
    assert reply.status == 200 and ledger["accepted"] == 1
