"""Status webhooks from the simulator to a receiver over real HTTP: Meta's format, the
signature, batching, duplicates, out-of-order ones, retries and drops, and the
metadata of the number that sent each message."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Any

from simulator import SimulatorConfig
from simulator.numbers import PhoneNumber
from tests.simulator.conftest import Receiver, phone, running, second_number, text


def fast(**fields: Any) -> SimulatorConfig:
    """Statuses within a tenth of a second, flushed every 20 ms, so tests stay quick."""
    delays: dict[str, Any] = {
        "sent_delay_ms": (5.0, 20.0),
        "delivered_delay_ms": (20.0, 80.0),
        "read_delay_ms": (10.0, 60.0),
        "webhook_flush_ms": 20.0,
        "late_probability": 0.0,
    }
    return SimulatorConfig(**(delays | fields))


async def test_statuses_arrive_signed_in_meta_format_with_their_callback_data(receiver: Receiver) -> None:
    config = fast(
        seed=11,
        webhook_url=receiver.url,
        delivered_probability=0.9,
        read_probability=0.6,
        later_failure_mix={"131026": 0.1},
        duplicate_webhook_probability=0.15,
        out_of_order_probability=0.3,
        webhook_batch_size=25,
    )
    n = 120
    async with running(config) as sim:
        replies = await asyncio.gather(
            *(sim.send(text(phone(i), callback=f"c7:m{i}"), key=f"msg-{i}") for i in range(n))
        )
        async with asyncio.timeout(5):
            await sim.simulator.webhooks.drain()
        ledger = await sim.ledger()

    wamids = {r.body["messages"][0]["id"]: i for i, r in enumerate(replies)}
    assert receiver.bad_signatures == 0 and receiver.posts
    for post in receiver.posts:
        assert post["object"] == "whatsapp_business_account"
        [entry] = post["entry"]
        assert entry["id"] == config.waba_id
        [change] = entry["changes"]
        assert change["field"] == "messages"
        value = change["value"]
        assert value["messaging_product"] == "whatsapp"
        assert value["metadata"] == {
            "display_phone_number": config.display_phone_number,
            "phone_number_id": config.phone_number_id,
        }
        assert 1 <= len(value["statuses"]) <= 25
    assert any(len(p["entry"][0]["changes"][0]["value"]["statuses"]) > 1 for p in receiver.posts)  # batched

    seen: dict[str, list[str]] = defaultdict(list)
    for status in receiver.statuses:
        i = wamids[status["id"]]
        seen[status["id"]].append(status["status"])
        assert status["recipient_id"] == phone(i).lstrip("+")
        assert status["biz_opaque_callback_data"] == f"c7:m{i}"
        assert status["timestamp"].isdigit() and abs(int(status["timestamp"]) - ledger["started_at"]) < 60
        if status["status"] == "failed":
            [error] = status["errors"]
            assert error["code"] == 131026
            assert error["title"] and error["message"] and error["error_data"]["details"]
        else:
            assert "errors" not in status

    # Every accepted message got its statuses; per kind they match the ledger, plus the
    # duplicates it says it sent on purpose.
    assert set(seen) == set(wamids)
    received = Counter(s["status"] for s in receiver.statuses)
    assert sum(received.values()) == sum(ledger["statuses_scheduled"].values()) + ledger["webhooks"]["duplicates"]
    for kind in ("sent", "delivered", "read", "failed"):
        assert received[kind] >= ledger["statuses_scheduled"][kind] > 0
    duplicates = sum(1 for kinds in seen.values() for k, c in Counter(kinds).items() if c > 1)
    assert duplicates == ledger["webhooks"]["duplicates"] > 0
    out_of_order = sum(
        1 for kinds in seen.values() if "read" in kinds and kinds.index("read") < kinds.index("delivered")
    )
    # Planned reorders happen; concurrent POSTs on a loaded machine can add a few more,
    # as on the real network, so the count is at least the planned one's order of size.
    assert ledger["webhooks"]["out_of_order"] > 0 and out_of_order > 0

    # The strongest status each message reached is the ledger's truth per campaign.
    rank = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}
    finals = Counter(max(kinds, key=rank.__getitem__) for kinds in seen.values())
    truth = ledger["campaigns"]["7"]["final"]
    assert {k: finals[k] for k in ("sent", "delivered", "read", "failed")} == {k: truth[k] for k in rank}
    assert ledger["campaigns"]["7"]["later_failures"] == {"131026": truth["failed"]}
    assert ledger["webhooks"]["failed"] == 0 and ledger["webhooks"]["statuses_pending"] == 0
    assert ledger["webhooks"]["statuses_sent"] == len(receiver.statuses)


async def test_a_failing_receiver_gets_the_batch_again(receiver: Receiver) -> None:
    receiver.fail_first = 2
    config = fast(
        webhook_url=receiver.url,
        delivered_probability=1.0,
        read_probability=0.0,
        duplicate_webhook_probability=0.0,
        webhook_retry_base_ms=20.0,
    )
    async with running(config) as sim:
        reply = await sim.send(text(phone(1), callback="c1:m1"), key="msg-1")
        async with asyncio.timeout(5):
            await sim.simulator.webhooks.drain()
        ledger = await sim.ledger()
    wamid = reply.body["messages"][0]["id"]
    # A retried batch may land after a later one: receivers must not rely on order.
    assert sorted((s["id"], s["status"]) for s in receiver.statuses) == [(wamid, "delivered"), (wamid, "sent")]
    assert receiver.attempts == 4  # two failed attempts, then the two statuses
    assert ledger["webhooks"]["retries"] == 2 and ledger["webhooks"]["failed"] == 0


async def test_an_unreachable_receiver_is_retried_then_dropped_and_counted() -> None:
    config = fast(
        webhook_url="http://127.0.0.1:9/nothing-listens-here",
        delivered_probability=1.0,
        read_probability=1.0,
        duplicate_webhook_probability=0.0,
        out_of_order_probability=0.0,
        webhook_max_attempts=3,
        webhook_retry_base_ms=10.0,
    )
    async with running(config) as sim:
        for i in range(3):
            await sim.send(text(phone(i), callback=f"c1:m{i}"), key=f"msg-{i}")
        async with asyncio.timeout(5):
            await sim.simulator.webhooks.drain()
        ledger = await sim.ledger()
    webhooks = ledger["webhooks"]
    assert webhooks["statuses_dropped"] == sum(ledger["statuses_scheduled"].values()) == 9
    assert webhooks["failed"] >= 1 and webhooks["retries"] == 2 * webhooks["failed"]
    assert webhooks["sent"] == 0 and webhooks["statuses_pending"] == 0


async def test_no_webhook_url_schedules_nothing_but_keeps_the_truth() -> None:
    async with running(SimulatorConfig(delivered_probability=1.0, read_probability=1.0)) as sim:
        await sim.send(text(phone(1), callback="c1:m1"), key="msg-1")
        ledger = await sim.ledger()
    assert ledger["statuses_scheduled"] == {"sent": 0, "delivered": 0, "read": 0, "failed": 0}
    assert ledger["campaigns"]["1"]["final"]["read"] == 1


async def test_the_webhook_url_can_be_set_once_the_receiver_runs(receiver: Receiver) -> None:
    async with running(fast(delivered_probability=0.0)) as sim:
        sim.simulator.webhook_url = receiver.url
        reply = await sim.send(text(phone(1)), key="msg-1")
        async with asyncio.timeout(5):
            await sim.simulator.webhooks.drain()
    # No callback data in the request: none in the status either.
    assert receiver.statuses == [
        {
            "id": reply.body["messages"][0]["id"],
            "status": "sent",
            "timestamp": receiver.statuses[0]["timestamp"],
            "recipient_id": phone(1).lstrip("+"),
            "pricing": {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"},
        }
    ]


async def test_each_status_carries_the_waba_and_metadata_of_the_number_that_sent_it(receiver: Receiver) -> None:
    second = PhoneNumber.from_json(second_number())
    config = fast(
        webhook_url=receiver.url,
        delivered_probability=1.0,
        read_probability=0.0,
        duplicate_webhook_probability=0.0,
        webhook_batch_size=50,
        numbers=(second,),
    )
    first = config.number
    async with running(config) as sim:
        sends = [sim.send(text(phone(i), callback=f"c1:m{i}"), key=f"msg-{i}") for i in range(10)]
        sends += [
            sim.send(
                text(phone(i), callback=f"c2:m{i}"), key=f"msg-{i}", token="token-2", phone_number_id="100000000000002"
            )
            for i in range(10)
        ]
        replies = await asyncio.gather(*sends)
        async with asyncio.timeout(5):
            await sim.simulator.webhooks.drain()
        own = await sim.ledger("100000000000002")
    sender = {r.body["messages"][0]["id"]: (first if i < 10 else second) for i, r in enumerate(replies)}
    assert receiver.bad_signatures == 0  # one app, one secret, for every number
    seen: Counter[str] = Counter()
    for post in receiver.posts:
        [entry] = post["entry"]
        value = entry["changes"][0]["value"]
        # a POST holds one number's statuses only, batched as they may be
        numbers = {sender[s["id"]] for s in value["statuses"]}
        assert len(numbers) == 1
        [number] = numbers
        assert entry["id"] == number.waba_id
        assert value["metadata"] == {
            "display_phone_number": number.display_phone_number,
            "phone_number_id": number.phone_number_id,
        }
        seen[number.phone_number_id] += len(value["statuses"])
    assert seen == {first.phone_number_id: 20, second.phone_number_id: 20}  # sent + delivered each
    assert own["webhooks"]["statuses_sent"] == 20 and own["webhooks"]["statuses_pending"] == 0
    assert own["statuses_scheduled"] == {"sent": 10, "delivered": 10, "read": 0, "failed": 0}


async def test_a_slow_receiver_costs_a_longer_schedule_not_a_post_per_waiting_status(receiver: Receiver) -> None:
    receiver.delay_s = 0.01
    config = fast(webhook_url=receiver.url, webhook_concurrency=4, delivered_probability=1.0, read_probability=1.0)
    n = 100
    async with running(config) as sim:
        await asyncio.gather(*(sim.send(text(phone(i)), key=f"msg-{i}") for i in range(n)))
        webhooks = sim.simulator.webhooks
        most = 0
        async with asyncio.timeout(20):
            while sim.simulator.ledger.webhooks_pending:
                most = max(most, webhooks.posts_started)
                await asyncio.sleep(0.005)
            await webhooks.drain()
    # 300 statuses were due within a tenth of a second; a POST takes 10 ms: they queued
    # in the schedule, never more than four POSTs (and bodies) at once.
    assert 1 <= most <= 4
    late = sim.simulator.ledger.webhooks.late_quantiles()
    p99, most_late = late["p99_ms"], late["max_ms"]
    assert p99 is not None and most_late is not None and 0 < p99 <= most_late  # it fell behind, and says so
    assert Counter(s["status"] for s in receiver.statuses) == {"sent": n, "delivered": n, "read": n}
