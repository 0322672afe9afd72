"""simulator/engine.py, the simulated account: over real HTTP its answers, errors,
determinism, rate limit and idempotency; in process the Simulator's keys, attempts,
cancellations and replays, and the throughput tier."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from simulator import Simulator, SimulatorConfig
from simulator.engine import Answer, ThroughputTier
from simulator.fate import decide, make_wamid
from simulator.ledger import SendRecord
from tests.simulator.conftest import (
    PHONE_NUMBER_ID,
    TOKEN,
    Reply,
    assert_error,
    assert_graph_error,
    phone,
    running,
    template,
    text,
)
from tests.waiting import until

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


async def test_a_wrong_token_is_401_code_190_and_a_missing_one_400_code_104() -> None:
    """The Graph API's answers, before WhatsApp sees the request (docs/STACK.md)."""
    async with running() as sim:
        wrong = await sim.send(text(phone(1)), token="nope")
        missing = await sim.send(text(phone(1)), token=None)
        ledger = await sim.ledger()
    error = assert_graph_error(wrong, 401, 190)
    assert error["message"] == "Invalid OAuth access token - Cannot parse access token"
    error = assert_graph_error(missing, 400, 104)
    assert error["message"] == "An access token is required to request this resource."
    assert ledger["accepted"] == 0 and ledger["immediate_errors"] == {"190": 1, "104": 1}


async def test_wrong_phone_number_id_is_400_code_100_subcode_33() -> None:
    async with running() as sim:
        reply = await sim.send(text(phone(1)), phone_number_id="999")
    error = assert_graph_error(reply, 400, 100, "GraphMethodException", 33)
    assert error["message"].startswith("Unsupported post request. Object with ID '999' does not exist")


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


async def test_a_template_the_waba_lacks_is_132001() -> None:
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


# --- the Simulator in process ----------------------------------------------------------

AUTHORIZATION = f"Bearer {TOKEN}"


def raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


async def send(simulator: Simulator, payload: dict[str, Any], key: str | None = None) -> Answer:
    """`handle_send` as the HTTP route calls it, with the right token and number."""
    return await simulator.handle_send(PHONE_NUMBER_ID, AUTHORIZATION, key, raw(payload))


def sent(answer: Answer) -> SendRecord:
    """The send an accepted answer stands for."""
    assert answer.status == 200 and answer.record is not None, answer
    return answer.record


async def test_a_keyless_request_is_keyed_by_recipient_and_content_and_a_repeat_is_its_next_attempt() -> None:
    simulator = Simulator(SimulatorConfig(seed=5))
    first = await send(simulator, text(phone(1), body="Hi Ada"))
    again = await send(simulator, text(phone(1), body="Hi Ada"))
    other = await send(simulator, text(phone(1), body="Hi Bob"))
    key = sent(first).key
    assert key.startswith("body-") and sent(again).key == key and sent(other).key != key
    assert sent(first).wamid == make_wamid(5, key, 0)
    assert sent(again).wamid == make_wamid(5, key, 1)  # Meta: a repeated request is a second message
    assert sent(other).wamid == make_wamid(5, sent(other).key, 0)


async def test_an_idempotency_key_not_honoured_still_names_the_message_and_counts_its_attempts() -> None:
    simulator = Simulator(SimulatorConfig(seed=5, honour_idempotency=False))
    answers = [await send(simulator, text(phone(1)), key="msg-1") for _ in range(3)]
    assert [sent(a).key for a in answers] == ["msg-1"] * 3
    assert [sent(a).wamid for a in answers] == [make_wamid(5, "msg-1", n) for n in range(3)]
    assert simulator.ledger.accepted == 3 and simulator.ledger.replays == 0


async def test_checks_run_token_first_then_phone_number_id_then_body() -> None:
    simulator = Simulator(SimulatorConfig())
    bad_body = b"{not json"
    no_token = await simulator.handle_send("999", None, None, bad_body)
    no_number = await simulator.handle_send("999", AUTHORIZATION, None, bad_body)
    no_body = await simulator.handle_send(PHONE_NUMBER_ID, AUTHORIZATION, None, bad_body)
    assert [json.loads(a.body)["error"]["code"] for a in (no_token, no_number, no_body)] == [104, 100, 100]
    assert json.loads(no_number.body)["error"]["error_subcode"] == 33
    assert "error_subcode" not in json.loads(no_body.body)["error"]
    assert dict(simulator.ledger.immediate_errors) == {"104": 1, "100": 2}


async def test_every_error_answer_has_a_trace_id_of_its_own() -> None:
    simulator = Simulator(SimulatorConfig(error_mix={"131026": 1.0}))
    answers = [await send(simulator, text(phone(i))) for i in range(3)]
    traces = [json.loads(a.body)["error"]["fbtrace_id"] for a in answers]
    assert len(set(traces)) == 3 and all(t.startswith("A") for t in traces)


async def test_a_permanent_error_is_replayed_for_its_key_byte_for_byte() -> None:
    simulator = Simulator(SimulatorConfig(error_mix={"131026": 1.0}, honour_idempotency=True))
    first = await send(simulator, text(phone(1), callback="c2:m1"), key="msg-1")
    again = await send(simulator, text(phone(1), callback="c2:m1"), key="msg-1")
    assert first.status == 400 and again.body == first.body
    assert simulator.ledger.immediate_errors == {"131026": 1} and simulator.ledger.replays == 1
    assert simulator.ledger.campaign(2).replays == 1


async def test_a_lost_answer_is_flagged_and_a_replay_for_its_key_is_the_whole_answer() -> None:
    simulator = Simulator(SimulatorConfig(lost_answer_probability=1.0, honour_idempotency=True))
    lost = await send(simulator, text(phone(1), callback="c2:m1"), key="msg-1")
    replay = await send(simulator, text(phone(1), callback="c2:m1"), key="msg-1")
    assert lost.status == 200 and lost.lost
    assert not replay.lost and replay.body == lost.body
    assert json.loads(replay.body)["messages"][0]["id"] == sent(lost).wamid
    assert simulator.ledger.accepted == 1 and simulator.ledger.answers_lost == 1 and simulator.ledger.replays == 1


async def test_a_request_cancelled_while_it_waits_is_sent_all_the_same_and_its_key_replays_it() -> None:
    simulator = Simulator(SimulatorConfig(latency_mean_ms=300, latency_jitter=0, honour_idempotency=True))
    task = asyncio.create_task(send(simulator, text(phone(1), callback="c2:m1"), key="msg-1"))
    await until(lambda: simulator.ledger.accepted == 1, what="the message accepted before its answer")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    retry = await send(simulator, text(phone(1), callback="c2:m1"), key="msg-1")
    assert retry.status == 200
    assert json.loads(retry.body)["messages"][0]["id"] == make_wamid(1, "msg-1", 0)
    assert simulator.ledger.accepted == 1 and simulator.ledger.replays == 1


async def test_a_waiter_cancelled_by_its_client_does_not_cancel_the_first_request() -> None:
    simulator = Simulator(SimulatorConfig(latency_mean_ms=300, latency_jitter=0, honour_idempotency=True))
    first = asyncio.create_task(send(simulator, text(phone(1)), key="msg-1"))
    waiter = asyncio.create_task(send(simulator, text(phone(1)), key="msg-1"))
    await until(lambda: simulator.ledger.requests == 2, what="both requests received")
    waiter.cancel()
    answer = await first
    assert waiter.cancelled() and answer.status == 200
    assert simulator.ledger.accepted == 1 and simulator.ledger.replays == 0


async def test_reset_gives_the_rate_limit_its_burst_back() -> None:
    simulator = Simulator(SimulatorConfig(rate_limit_per_second=0.01))
    assert (await send(simulator, text(phone(1)))).status == 200
    assert (await send(simulator, text(phone(2)))).status == 429
    simulator.reset()
    assert (await send(simulator, text(phone(3)))).status == 200
    assert simulator.ledger.accepted == 1 and simulator.ledger.rate_limited == 0


def test_the_throughput_tier_allows_one_second_of_burst_then_refuses_until_tokens_come_back() -> None:
    tier = ThroughputTier(rate=10)
    assert [tier.take() for _ in range(10)] == [True] * 10
    assert tier.take() is False  # refused, not delayed: the caller gets 130429
    tier.refill()
    assert [tier.take() for _ in range(10)] == [True] * 10


def test_the_throughput_tier_gives_tokens_back_at_its_rate_up_to_one_second_of_burst() -> None:
    tier = ThroughputTier(rate=20)
    assert sum(tier.take() for _ in range(21)) == 20
    tier.stamp -= 0.1  # as if 100 ms had passed: two tokens at 20/s
    assert [tier.take() for _ in range(3)] == [True, True, False]
    tier.stamp -= 3600  # an idle hour refills one second's worth, no more
    assert sum(tier.take() for _ in range(21)) == 20


def test_a_rate_below_one_per_second_still_allows_one_send() -> None:
    tier = ThroughputTier(rate=0.5)
    assert tier.take() is True and tier.take() is False


async def test_a_message_refused_for_its_request_counts_as_rejected_in_its_campaign() -> None:
    """`final.rejected` is "refused at once, never accepted": a template Meta does not
    know (132001) refuses its message as surely as a 131026 does."""
    async with running(SimulatorConfig(error_mix={"131026": 1.0})) as sim:
        undeliverable = await sim.send(text(phone(1), callback="c3:m1"), key="msg-1")
        unknown_template = await sim.send(template(phone(2), name="bad_promo", callback="c3:m2"), key="msg-2")
        ledger = await sim.ledger()
    assert (undeliverable.body["error"]["code"], unknown_template.body["error"]["code"]) == (131026, 132001)
    three = ledger["campaigns"]["3"]
    assert three["immediate_errors"] == {"131026": 1, "132001": 1}
    assert three["final"]["rejected"] == 2
