"""Campaigns sent for real: worker processes, Redis, the simulator over HTTP, receipts
back through the webhook. The simulator's ledger is the truth the numbers must equal."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import Stack, expected_stats


async def test_scheduled_campaign_runs_at_its_time_and_numbers_equal_the_ledger(stack: Stack) -> None:
    gid, pk = await stack.create(300, first=0)
    at = datetime.now(UTC) + timedelta(seconds=2)
    scheduled = await stack.mutate("scheduleCampaign(id: $id, scheduledAt: $at)", id=gid, at=at.isoformat())
    assert scheduled["status"] == "SCHEDULED"
    await asyncio.sleep(1)
    assert (await stack.campaign(gid))["status"] == "SCHEDULED"  # not before its time
    done = await stack.wait_for(gid, "COMPLETED", timeout=60)
    assert done["stats"]["pending"] == 0
    stats, ledger = await stack.settled(gid, pk)
    assert stats["total"] == 300
    assert ledger["duplicate_sends"] == 0
    assert ledger["immediate_errors"].get("131026", 0) > 0  # the mix really was exercised
    history = await stack.gql("query($id: ID!) { campaign(id: $id) { events { from to actor } } }", id=gid)
    assert [(e["from"], e["to"], e["actor"]) for e in history["campaign"]["events"]][1:] == [
        ("DRAFT", "SCHEDULED", "default"),
        ("SCHEDULED", "QUEUED", "scheduler"),
        ("QUEUED", "PROCESSING", "worker"),
        ("PROCESSING", "COMPLETED", "worker"),
    ]


async def test_reschedule_makes_the_old_job_a_no_op(stack: Stack) -> None:
    gid, _ = await stack.create(20, first=1000)
    soon = datetime.now(UTC) + timedelta(seconds=1)
    await stack.mutate("scheduleCampaign(id: $id, scheduledAt: $at)", id=gid, at=soon.isoformat())
    later = datetime.now(UTC) + timedelta(hours=1)
    await stack.mutate("rescheduleCampaign(id: $id, scheduledAt: $at)", id=gid, at=later.isoformat())
    await asyncio.sleep(3)
    assert (await stack.campaign(gid))["status"] == "SCHEDULED"


async def test_pause_mid_send_then_resume_sends_each_recipient_once(stack: Stack) -> None:
    gid, pk = await stack.create(3000, first=2000)
    await stack.mutate("sendCampaignNow(id: $id)", id=gid)
    while (await stack.campaign(gid))["stats"]["pending"] > 2500:
        await asyncio.sleep(0.05)
    paused = await stack.mutate("pauseCampaign(id: $id)", id=gid)
    assert paused["status"] == "PAUSED"
    # no new provider call starts once the mutation returned
    requests_at_pause = (await stack.ledger(pk))["accepted"]
    await asyncio.sleep(1.5)
    ledger = await stack.ledger(pk)
    in_flight_allowance = 200 + 10  # calls already in flight finish (worker concurrency)
    assert ledger["accepted"] - requests_at_pause <= in_flight_allowance
    frozen = ledger["accepted"] + sum(ledger["immediate_errors"].values())
    await asyncio.sleep(1)
    later = await stack.ledger(pk)
    assert later["accepted"] + sum(later["immediate_errors"].values()) == frozen
    assert (await stack.campaign(gid))["stats"]["pending"] > 0
    await stack.mutate("resumeCampaign(id: $id)", id=gid)
    await stack.wait_for(gid, "COMPLETED", timeout=90)
    _, ledger = await stack.settled(gid, pk)
    assert ledger["duplicate_sends"] == 0
    # claimed but never called (claims run ahead of the sends) went back to PENDING
    # and were sent fresh; one left in SENDING would have been resent as in doubt
    assert ledger["replays"] == 0
    assert ledger["distinct_message_ids"] + ledger["final"]["rejected"] <= 3000


async def test_cancel_mid_send_stops_and_cancels_the_rest(stack: Stack) -> None:
    gid, pk = await stack.create(3000, first=6000)
    await stack.mutate("sendCampaignNow(id: $id)", id=gid)
    while (await stack.campaign(gid))["stats"]["pending"] > 2600:
        await asyncio.sleep(0.05)
    cancelled = await stack.mutate("cancelCampaign(id: $id)", id=gid)
    assert cancelled["status"] == "CANCELLED"
    await asyncio.sleep(2)  # in-flight calls finish and are counted
    campaign = await stack.campaign(gid)
    stats = campaign["stats"]
    assert stats["pending"] == 0
    assert stats["cancelled"] > 0
    assert stats["total"] == stats["sent"] + stats["failed"] + stats["cancelled"]
    ledger = await stack.ledger(pk)
    assert ledger["duplicate_sends"] == 0
    # every accepted send is counted as sent (or failed later): nothing lost
    assert ledger["accepted"] == ledger["distinct_message_ids"]


async def test_failure_guard_pauses_with_a_reason(stack: Stack) -> None:
    gid, _ = await stack.create(1000, first=10_000, failureThreshold=0.02, failureSampleSize=100)
    await stack.mutate("sendCampaignNow(id: $id)", id=gid)
    paused = await stack.wait_for(gid, "PAUSED", timeout=60)
    assert "Failure rate" in paused["statusReason"] and "above 2.0%" in paused["statusReason"]
    assert paused["stats"]["pending"] > 0
    events = await stack.gql("query($id: ID!) { campaign(id: $id) { events { to actor reason } } }", id=gid)
    last = events["campaign"]["events"][-1]
    assert (last["to"], last["actor"]) == ("PAUSED", "failure-guard")


async def test_fatal_provider_error_fails_the_campaign_and_retry_resumes_it(stack: Stack) -> None:
    gid, pk = await stack.create(50, first=20_000, templateName="bad_promo", templateLanguage="en_US")
    await stack.mutate("sendCampaignNow(id: $id)", id=gid)
    failed = await stack.wait_for(gid, "FAILED", timeout=30)
    assert "132001" in failed["statusReason"]
    assert failed["stats"]["pending"] == 50  # nothing lost: every recipient still waits
    retried = await stack.mutate("retryCampaign(id: $id)", id=gid)
    assert retried["status"] == "QUEUED"
    again = await stack.wait_for(gid, "FAILED", timeout=30)  # the template is still rejected
    assert again["stats"]["pending"] == 50
    assert (await stack.ledger(pk)).get("accepted", 0) == 0


async def test_retry_failed_resends_only_what_may_succeed(stack: Stack) -> None:
    gid, pk = await stack.create(600, first=30_000)
    await stack.mutate("sendCampaignNow(id: $id)", id=gid)
    await stack.wait_for(gid, "COMPLETED", timeout=60)
    stats, ledger = await stack.settled(gid, pk)
    # 131026 (undeliverable) stays failed; 131049 (ecosystem limit, reported later)
    # and transient errors whose attempts ran out are worth another try
    permanent = ledger["immediate_errors"].get("131026", 0)
    retryable = stats["failed"] - permanent
    failed_after_acceptance = ledger["final"]["failed"]
    assert retryable > 0, (stats, ledger)
    retried = await stack.mutate("retryFailedMessages(id: $id)", id=gid)
    assert retried["stats"]["pending"] == retryable
    await stack.wait_for(gid, "COMPLETED", timeout=60)
    after = await stack.campaign(gid)
    assert after["stats"]["pending"] == 0
    assert after["stats"]["failed"] < stats["failed"]
    ledger = await stack.ledger(pk)
    # the only second acceptances are deliberate resends of messages that failed after
    # the provider took them (a resend may itself be refused); transient failures had
    # never been accepted
    assert 0 < ledger["duplicate_sends"] <= failed_after_acceptance


async def test_sigkill_mid_campaign_then_a_new_worker_finishes_without_duplicates(stack: Stack) -> None:
    gid, pk = await stack.create(4000, first=40_000)
    await stack.mutate("sendCampaignNow(id: $id)", id=gid)
    while (await stack.campaign(gid))["stats"]["pending"] > 2500:
        await asyncio.sleep(0.05)
    stack.kill("worker", signal.SIGKILL)
    killed_at = await stack.ledger(pk)
    stack.start_worker()
    # the lease (15 s) expires, the sweep re-rings, in-doubt messages are resent under
    # their own idempotency keys
    await stack.wait_for(gid, "COMPLETED", timeout=90)
    stats, ledger = await stack.settled(gid, pk)
    assert ledger["duplicate_sends"] == 0
    assert ledger["accepted"] >= killed_at["accepted"]
    assert stats == stats | expected_stats(ledger, 4000)
    # zero missing recipients: every one accepted, refused at once, or failed transiently
    assert stats["total"] == 4000 and stats["pending"] == 0


async def test_two_workers_three_campaigns_no_message_sent_twice(stack: Stack) -> None:
    stack.start_worker("worker-2")
    try:
        created = [await stack.create(1500, first=50_000 + i * 2000) for i in range(3)]
        for gid, _ in created:
            await stack.mutate("sendCampaignNow(id: $id)", id=gid)
        for gid, pk in created:
            await stack.wait_for(gid, "COMPLETED", timeout=90)
            _, ledger = await stack.settled(gid, pk)
            assert ledger["duplicate_sends"] == 0
            assert ledger["replays"] == 0
    finally:
        stack.kill("worker-2")


async def test_send_test_message_goes_out_now_outside_the_campaigns_numbers(stack: Stack) -> None:
    gid, _ = await stack.create(5, first=60_000, body="Hi {{name}}, code {{code}}")
    query = """mutation($id: ID!, $phone: String!, $variables: JSON) {
      sendTestMessage(id: $id, phone: $phone, variables: $variables) {
        message { id phone status providerMessageId errorCode attempts }
        userErrors { field message code }
      } }"""
    ok = (await stack.gql(query, id=gid, phone="+1 415 555 2671", variables={"name": "Ada", "code": "X"}))[
        "sendTestMessage"
    ]
    assert ok["userErrors"] == []
    message = ok["message"]
    assert (message["phone"], message["status"], message["attempts"]) == ("+14155552671", "SENT", 1)
    assert message["providerMessageId"].startswith("wamid.")
    found = await stack.gql("query($id: ID!) { node(id: $id) { ... on Message { status } } }", id=message["id"])
    assert found["node"] == {"status": "SENT"}
    stats = (await stack.campaign(gid))["stats"]
    assert (stats["total"], stats["sent"]) == (5, 0)  # outside the campaign's numbers
    missing = (await stack.gql(query, id=gid, phone="+14155552671", variables={"name": "Ada"}))["sendTestMessage"]
    assert [(e["field"], e["code"]) for e in missing["userErrors"]] == [(["variables"], "VALIDATION")]
    bad = (await stack.gql(query, id=gid, phone="12345", variables={}))["sendTestMessage"]
    assert [(e["field"], e["code"]) for e in bad["userErrors"]] == [(["phone"], "VALIDATION")]
