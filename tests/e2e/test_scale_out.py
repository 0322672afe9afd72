"""The production topology on one machine: THREE `campaigns serve` processes and TWO
workers against one PostgreSQL and one Redis. Live numbers travel between processes only
through Redis (a worker publishes, every API process fans out to its own subscribers), so
subscribers spread over the three processes, on both WebSocket protocols, must all end
on the true numbers; a status change must reach list dashboards on every process; and
one API process killed mid-send must leave the others' subscribers unaffected.

PostgreSQL only: that is the topology operators scale out (README, "Scaling out"); a
SQLite file serves one machine's processes through one writer lock."""

from __future__ import annotations

import asyncio
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import _recreate_postgres
from tests.e2e.conftest import Stack, _database_url, running_stack
from tests.e2e.test_live import CHANGES, PROGRESS, STAT_KEYS, numbers
from tests.processes import free_port, wait_http
from tests.wsclient import LEGACY_WS, TRANSPORT_WS, Session, connect

pytestmark = pytest.mark.skipif(
    not _database_url(Path(tempfile.gettempdir())).startswith("postgres"),
    reason="the scale-out topology is PostgreSQL's (set TEST_DATABASE_URL); SQLite has one writer",
)

#: subscribers per API process and protocol
PER_PROCESS = 3


class Cluster:
    """The stack of tests/e2e/conftest.py (simulator, API `api`, worker `worker`) plus
    the API processes `api2`, `api3` and the worker `worker2`."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.apis: dict[str, str] = {"api": stack.api}

    def start_api(self, name: str) -> None:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = self.stack.spawn(name, "serve", "--port", str(port))
        wait_http(f"{url}/healthz", proc, (self.stack.logs / f"{name}.log").read_text)
        self.apis[name] = url


@pytest.fixture(scope="module")
def cluster_processes() -> Iterator[Cluster]:
    tmp = Path(tempfile.mkdtemp(prefix="campaigns-scale-"))
    database_url = _database_url(tmp).rsplit("/", 1)[0] + "/campaigns_scale_test"
    asyncio.run(_recreate_postgres(database_url))
    with running_stack(tmp, database_url) as stack:
        cluster = Cluster(stack)
        cluster.start_api("api2")
        cluster.start_api("api3")
        stack.start_worker("worker2")
        yield cluster


@pytest_asyncio.fixture
async def cluster(cluster_processes: Cluster) -> AsyncIterator[Cluster]:
    async with httpx.AsyncClient(timeout=30) as client:
        cluster_processes.stack.client = client
        yield cluster_processes
        cluster_processes.stack.client = None


async def _subscribers(exits: AsyncExitStack, cluster: Cluster, gid: str) -> dict[str, list[Session]]:
    """PER_PROCESS sessions per protocol on every API process, each past its first
    snapshot (so all are subscribed before the campaign starts)."""
    by_api: dict[str, list[Session]] = {}
    for name, url in cluster.apis.items():
        for protocol in (TRANSPORT_WS, LEGACY_WS):
            for _ in range(PER_PROCESS):
                session = await exits.enter_async_context(connect(url, cluster.stack.key, protocol))
                await session.subscribe(PROGRESS, id=gid)
                first = (await session.data())["campaignProgress"]
                assert first["status"] == "DRAFT"
                by_api.setdefault(name, []).append(session)
    return by_api


async def _until_true_numbers(session: Session, truth: dict[str, int], timeout: float = 60) -> dict[str, Any]:
    """Read updates until one is COMPLETED with `truth`'s numbers (newest wins: a
    subscriber may skip intermediate snapshots, never the last)."""
    async with asyncio.timeout(timeout):
        while True:
            update = (await session.data(timeout=timeout))["campaignProgress"]
            if update["status"] == "COMPLETED" and numbers(update) == truth:
                return update


async def _truth(cluster: Cluster, gid: str) -> dict[str, int]:
    """The campaign's numbers once it completed and every receipt the simulator decided
    arrived (they equal its ledger's truth): what every subscriber must end on."""
    await cluster.stack.wait_for(gid, "COMPLETED", timeout=60)
    stats, _ = await cluster.stack.settled(gid, _pk(gid))
    return {k: stats[k] for k in STAT_KEYS}


def _pk(gid: str) -> int:
    from domain.ids import expect_id

    return expect_id(gid, "Campaign")


async def test_subscribers_on_three_api_processes_end_on_the_true_numbers_and_see_every_status_change(
    cluster: Cluster,
) -> None:
    stack = cluster.stack
    gid, pk = await stack.create(3000, first=200_000, sendRate=600)
    async with AsyncExitStack() as exits:
        by_api = await _subscribers(exits, cluster, gid)
        lists = {}
        for name, url in cluster.apis.items():
            lists[name] = await exits.enter_async_context(connect(url, stack.key))
            await lists[name].subscribe(CHANGES)
        await asyncio.sleep(0.3)  # the list subscriptions are registered with their hubs
        await stack.mutate("sendCampaignNow(id: $id)", id=gid)
        truth = await _truth(cluster, gid)
        assert truth["pending"] == 0 and truth["sent"] + truth["failed"] == 3000
        ends = await asyncio.gather(*(_until_true_numbers(s, truth) for ss in by_api.values() for s in ss))
        assert len(ends) == 3 * 2 * PER_PROCESS
        for name, session in lists.items():
            moves: list[tuple[str | None, str]] = []
            async with asyncio.timeout(30):
                while ("PROCESSING", "COMPLETED") not in moves:
                    change = (await session.data(timeout=30))["campaignStatusChanges"]
                    if change["campaignId"] == gid:
                        moves.append((change["from"], change["to"]))
            assert moves[0] == ("DRAFT", "QUEUED"), (name, moves)
    ledger = await stack.ledger(pk)
    assert ledger["duplicate_sends"] == 0 and ledger["distinct_message_ids"] == 3000
    # both workers are alive and either may have sent it: one lease at a time decides
    assert all(stack.procs[w].poll() is None for w in ("worker", "worker2"))


async def test_killing_one_api_process_leaves_the_others_subscribers_unaffected(cluster: Cluster) -> None:
    stack = cluster.stack
    gid, pk = await stack.create(3000, first=210_000, sendRate=500)
    async with AsyncExitStack() as exits:
        by_api = await _subscribers(exits, cluster, gid)
        await stack.mutate("sendCampaignNow(id: $id)", id=gid)
        survivor = by_api["api3"][0]
        while (await survivor.data(timeout=20))["campaignProgress"]["stats"]["sent"] < 500:
            pass
        stack.kill("api2", signal.SIGKILL)
        cluster.apis.pop("api2")
        truth = await _truth(cluster, gid)
        alive = [s for name in ("api", "api3") for s in by_api[name]]
        ends = await asyncio.gather(*(_until_true_numbers(s, truth) for s in alive))
        assert len(ends) == 2 * 2 * PER_PROCESS
    ledger = await stack.ledger(pk)
    assert ledger["duplicate_sends"] == 0 and ledger["distinct_message_ids"] == 3000
    cluster.start_api("api2")  # as it was, for whatever runs next
