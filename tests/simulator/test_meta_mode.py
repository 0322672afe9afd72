"""The simulator's defaults behave as Meta's Cloud API does, and its answer faults are
what the service's adapter sees on a real network: a lost answer and a late one are
both ambiguous, while the ledger knows the message was accepted."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from domain.sending import Outcome, SendRequest
from providers.whatsapp import WhatsAppProvider
from simulator import SimulatorConfig
from tests.simulator.conftest import TOKEN, Receiver, phone, running, text
from tests.simulator.test_webhooks import fast

PHONE_ID = SimulatorConfig().phone_number_id


def request(i: int) -> SendRequest:
    return SendRequest(message_id=i, campaign_id=5, phone=phone(i), body="Hi")


async def test_by_default_each_status_comes_alone_and_a_repeated_request_is_a_second_message(
    receiver: Receiver,
) -> None:
    config = fast(webhook_url=receiver.url, delivered_probability=1.0, read_probability=1.0)
    assert SimulatorConfig().webhook_batch_size == 1 and not SimulatorConfig().honour_idempotency
    async with running(config) as sim:
        first = await sim.send(text(phone(1), callback="c5:m1:r0"), key="msg-1")
        again = await sim.send(text(phone(1), callback="c5:m1:r0"), key="msg-1")  # same key: no help
        async with asyncio.timeout(5):
            await sim.simulator.webhooks.drain()
        ledger = await sim.ledger()
    assert first.body["messages"][0]["id"] != again.body["messages"][0]["id"]
    assert ledger["campaigns"]["5"]["duplicate_sends"] == 1 and ledger["replays"] == 0
    assert all(len(p["entry"][0]["changes"][0]["value"]["statuses"]) == 1 for p in receiver.posts)
    # a `sent` for every accepted message, then delivered and read
    assert Counter(s["status"] for s in receiver.statuses) == {"sent": 2, "delivered": 2, "read": 2}
    assert {s["biz_opaque_callback_data"] for s in receiver.statuses} == {"c5:m1:r0"}


async def test_a_lost_answer_is_ambiguous_to_the_adapter_and_accepted_in_the_ledger() -> None:
    async with running(SimulatorConfig(lost_answer_probability=1.0)) as sim:
        provider = WhatsAppProvider(sim.url, "v26.0", PHONE_ID, TOKEN, timeout_s=5)
        try:
            result = await provider.send(request(1))
        finally:
            await provider.close()
        ledger = await sim.ledger()
    assert result.outcome is Outcome.TRANSIENT and result.ambiguous
    assert ledger["accepted"] == 1 and ledger["answers_lost"] == 1


async def test_an_answer_slower_than_the_client_waits_is_ambiguous_and_accepted() -> None:
    async with running(SimulatorConfig(slow_answer_probability=1.0, slow_answer_ms=1500)) as sim:
        provider = WhatsAppProvider(sim.url, "v26.0", PHONE_ID, TOKEN, timeout_s=0.3)
        try:
            started = time.monotonic()
            result = await provider.send(request(2))
            waited = time.monotonic() - started
        finally:
            await provider.close()
        ledger = await sim.ledger()
    assert result.outcome is Outcome.TRANSIENT and result.ambiguous and result.error_code == "timeout"
    assert waited < 1.0
    assert ledger["accepted"] == 1 and ledger["answers_slow"] == 1


async def test_late_statuses_come_after_their_delay(receiver: Receiver) -> None:
    config = fast(
        webhook_url=receiver.url, delivered_probability=0.0, late_probability=1.0, late_delay_ms=(400.0, 500.0)
    )
    async with running(config) as sim:
        sent_at = time.monotonic()
        await sim.send(text(phone(3), callback="c5:m3:r0"), key="msg-3")
        await asyncio.sleep(0.3)
        assert receiver.statuses == []  # a normal `sent` would be here by now
        async with asyncio.timeout(5):
            await sim.simulator.webhooks.drain()
    assert [s["status"] for s in receiver.statuses] == ["sent"]
    assert time.monotonic() - sent_at >= 0.4


async def test_webhooks_are_retried_with_backoff_until_the_receiver_is_back(receiver: Receiver) -> None:
    """Meta retries what was not answered 2xx (for up to 7 days): a receiver that is down
    for a while still gets every status, each POST retried with a growing pause."""
    receiver.fail_first = 12
    config = fast(
        webhook_url=receiver.url,
        delivered_probability=1.0,
        read_probability=0.0,
        duplicate_webhook_probability=0.0,
        webhook_retry_base_ms=10.0,
        webhook_retry_max_ms=80.0,
    )
    assert SimulatorConfig().webhook_retry_for_s == 7 * 24 * 3600
    async with running(config) as sim:
        for i in range(3):
            await sim.send(text(phone(i), callback=f"c5:m{i}:r0"), key=f"msg-{i}")
        async with asyncio.timeout(10):
            await sim.simulator.webhooks.drain()
        ledger = await sim.ledger()
    assert len(receiver.statuses) == 6  # sent + delivered for each, none lost
    webhooks = ledger["webhooks"]
    assert webhooks["retries"] == 12 and webhooks["failed"] == 0 and webhooks["statuses_dropped"] == 0
