"""Live numbers over real WebSockets, both protocols, while a worker really sends."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, Stack
from tests.wsclient import LEGACY_WS, TRANSPORT_WS, Rejected, connect

PROGRESS = """subscription($id: ID!) { campaignProgress(id: $id) {
  campaignId status sendRate at stats { total pending sent delivered read failed cancelled progress } } }"""
CHANGES = "subscription { campaignStatusChanges { campaignId name from to reason at } }"
STAT_KEYS = ("total", "pending", "sent", "delivered", "read", "failed", "cancelled")


def numbers(progress: dict[str, Any]) -> dict[str, int]:
    return {k: progress["stats"][k] for k in STAT_KEYS}


async def follow_until_settled(session: Any, stack: Stack, gid: str, timeout: float = 90) -> list[dict[str, Any]]:
    """Collect updates until the campaign is COMPLETED and the numbers equal the database's."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            update = (await session.data(timeout=3))["campaignProgress"]
            seen.append(update)
        except TimeoutError:
            pass
        if seen and seen[-1]["status"] == "COMPLETED":
            truth = (await stack.campaign(gid))["stats"]
            if numbers(seen[-1]) == {k: truth[k] for k in STAT_KEYS}:
                return seen
    raise AssertionError(f"never settled: last {seen[-1] if seen else None}")


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_progress_snapshot_first_then_live_updates_ending_on_the_truth(stack: Stack, protocol: str) -> None:
    gid, pk = await stack.create(1500, first=100_000 + (0 if protocol == TRANSPORT_WS else 5000))
    async with connect(stack.api, stack.key, protocol) as session:
        await session.subscribe(PROGRESS, id=gid)
        first = (await session.data())["campaignProgress"]
        assert (first["status"], first["stats"]["total"], first["stats"]["pending"]) == ("DRAFT", 1500, 1500)
        await stack.mutate("sendCampaignNow(id: $id)", id=gid)
        updates = await follow_until_settled(session, stack, gid)
    statuses = [u["status"] for u in updates]
    assert "PROCESSING" in statuses and statuses[-1] == "COMPLETED"
    sent_over_time = [u["stats"]["sent"] + u["stats"]["failed"] for u in updates]
    assert len(set(sent_over_time)) >= 3  # the numbers moved during sending, not just at the end
    assert any(u["sendRate"] > 0 for u in updates)
    # the last update equals the database's counts, and they equal the ledger's truth
    _, ledger = await stack.settled(gid, pk)
    assert ledger["duplicate_sends"] == 0


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_bad_key_is_refused(stack: Stack, protocol: str) -> None:
    for key in (None, "cmp_not-a-real-key"):
        with pytest.raises(Rejected) as refused:
            async with connect(stack.api, key, protocol):
                pass
        if protocol == TRANSPORT_WS:
            assert refused.value.code == 4403


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_another_workspaces_campaign_is_not_found(stack: Stack, protocol: str) -> None:
    gid, _ = await stack.create(1, first=120_000)
    made = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli", "create-workspace", "Other"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
    )
    other_key = made.stdout.strip().splitlines()[-1]
    async with connect(stack.api, other_key, protocol) as session:
        await session.subscribe(PROGRESS, id=gid)
        message = await session.next()
    errors = message["payload"] if message["type"] == "error" else message["payload"].get("errors")
    assert "No campaign with id" in str(errors)


async def test_status_changes_reach_list_dashboards(stack: Stack) -> None:
    gid, _ = await stack.create(50, first=130_000)
    async with connect(stack.api, stack.key) as session:
        await session.subscribe(CHANGES)
        await asyncio.sleep(0.2)
        await stack.mutate("sendCampaignNow(id: $id)", id=gid)
        moves: list[tuple[str | None, str]] = []
        while ("PROCESSING", "COMPLETED") not in moves:
            change = (await session.data(timeout=30))["campaignStatusChanges"]
            if change["campaignId"] == gid:
                moves.append((change["from"], change["to"]))
    assert moves[0] == ("DRAFT", "QUEUED")


async def test_a_client_that_reads_nothing_does_not_delay_another(stack: Stack) -> None:
    gid, _ = await stack.create(3000, first=140_000)
    async with connect(stack.api, stack.key) as idle, connect(stack.api, stack.key) as active:
        await idle.subscribe(PROGRESS, id=gid)
        await active.subscribe(PROGRESS, id=gid)
        await active.data()
        await stack.mutate("sendCampaignNow(id: $id)", id=gid)
        received: list[float] = []
        started = time.monotonic()
        while time.monotonic() - started < 10:  # the idle client reads nothing meanwhile
            update = (await active.data(timeout=5))["campaignProgress"]
            received.append(time.monotonic())
            if update["status"] == "COMPLETED":
                break
        gaps = [b - a for a, b in itertools.pairwise(received)]
        assert len(received) >= 8 and max(gaps) < 2.0, gaps
        # the idle one was not given a backlog: it catches up on recent snapshots
        late = (await idle.data())["campaignProgress"]
        assert late["stats"]["total"] == 3000


async def test_subscribers_survive_a_redis_restart_and_end_on_the_truth(stack: Stack) -> None:
    gid, pk = await stack.create(3000, first=150_000, sendRate=400)
    async with connect(stack.api, stack.key) as session:
        await session.subscribe(PROGRESS, id=gid)
        await session.data()
        await stack.mutate("sendCampaignNow(id: $id)", id=gid)
        while (await session.data(timeout=10))["campaignProgress"]["stats"]["sent"] < 500:
            pass
        stack.redis.stop()
        await asyncio.sleep(2)
        stack.redis.start()
        after = await follow_until_settled(session, stack, gid, timeout=120)
    assert after[-1]["status"] == "COMPLETED"
    _, ledger = await stack.settled(gid, pk)
    assert ledger["duplicate_sends"] == 0
