"""Never twice, never lost, true numbers: the send path under the faults production
meets, on real processes (API, workers, the simulator behaving as the Cloud API: no
idempotency key, statuses one per POST, retried), with a Redis and (on PostgreSQL) a
database server of the test's own, so they can be killed and restarted.

Every case ends with the same checks (`assert_exactly_once`): the simulator's ledger
shows every recipient accepted exactly once, no message is SENDING, the campaign's
counters equal a GROUP BY over its messages, and `sent` equals the ledger's count.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio

from tests.e2e.cluster import PostgresCluster
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.truth import read_truth
from tests.waiting import until

ON_POSTGRES = bool(os.environ.get("TEST_DATABASE_URL"))
#: no refusals and no later failures: every recipient must be accepted, exactly once
FAULT_ENV = {
    "WORKER_CONCURRENCY": "50",
    "WORKER_LEASE_TTL_S": "4",
    "WORKER_DRAIN_TIMEOUT_S": "10",
    "RECONCILE_WINDOW_S": "2",
    "WHATSAPP_TIMEOUT_S": "2",
    "SIMULATOR_SEED": "11",
    "SIMULATOR_DELIVERED_PROBABILITY": "0.9",
    "SIMULATOR_READ_PROBABILITY": "0.5",
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster | None]:
    if not ON_POSTGRES:
        yield None
        return
    own = PostgresCluster()
    own.init()
    try:
        yield own
    finally:
        own.destroy()


@pytest.fixture
def database_url(cluster: PostgresCluster | None, request: pytest.FixtureRequest) -> str:
    """A new database per case: a file on SQLite, a database of the test's own
    PostgreSQL server otherwise."""
    if cluster is None:
        return f"sqlite://{Path(tempfile.mkdtemp(prefix='campaigns-faults-')) / 'faults.sqlite3'}"
    name = f"faults_{request.node.name.split('[')[0][-40:]}".lower()

    async def create() -> None:
        conn = await asyncpg.connect(cluster.url("postgres").replace("postgres://", "postgresql://", 1))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return cluster.url(name)


@contextmanager
def stack_for(database_url: str, env: dict[str, str] | None = None, latency_ms: float = 20) -> Iterator[Stack]:
    tmp = Path(tempfile.mkdtemp(prefix="campaigns-faults-"))
    with running_stack(tmp, database_url, FAULT_ENV | (env or {}), latency_ms=latency_ms) as stack:
        yield stack


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield http


async def accepted(stack: Stack, pk: int) -> int:
    return int((await stack.ledger(pk)).get("accepted", 0))


async def sending_until(stack: Stack, pk: int, n: int) -> None:
    async def far_enough() -> bool:
        return await accepted(stack, pk) >= n

    await until(far_enough, 60, f"{n} accepted", every=0.1)


async def assert_exactly_once(stack: Stack, database_url: str, pk: int, total: int) -> None:
    """The four checks every fault case ends with (the module docstring)."""
    ledger = await stack.ledger(pk)
    assert ledger["accepted"] == ledger["distinct_message_ids"] == total, ledger
    assert ledger["duplicate_sends"] == 0, ledger
    truth = await read_truth(database_url, pk)
    assert truth.sending == 0, truth
    assert truth.counters == truth.counted, truth
    assert truth.counters["sent"] == ledger["accepted"], (truth, ledger)
    assert truth.counters["pending"] == 0 and truth.status == "COMPLETED", truth


async def finish(stack: Stack, database_url: str, gid: str, pk: int, total: int, timeout: float = 60) -> None:
    await stack.wait_for(gid, "COMPLETED", timeout=timeout)
    await stack.settled(gid, pk, timeout=30)
    await assert_exactly_once(stack, database_url, pk, total)


# ------------------------------------------------------------------------------ cases


async def test_sigterm_mid_send_drains_and_another_worker_goes_on(database_url: str, client: httpx.AsyncClient) -> None:
    with stack_for(database_url) as stack:
        stack.client = client
        gid, pk = await stack.create(2000, sendRate=300)
        await stack.mutate("sendCampaignNow(id: $id)", id=gid)
        await sending_until(stack, pk, 400)
        started = time.monotonic()
        stack.kill("worker", signal.SIGTERM, timeout=30)
        drained_in = time.monotonic() - started
        # it drained: calls in flight finished and were written, unstarted claims went
        # back, the lease was released (no one waits for it to expire)
        truth = await read_truth(database_url, pk)
        assert truth.sending == 0 and truth.lease_owner is None, truth
        assert truth.counters["sent"] == await accepted(stack, pk)
        assert truth.status == "PROCESSING" and truth.counters["pending"] > 0
        assert drained_in < 12
        stack.start_worker("worker-2")
        await finish(stack, database_url, gid, pk, 2000)


async def test_sigkill_mid_send_then_another_worker(database_url: str, client: httpx.AsyncClient) -> None:
    with stack_for(database_url) as stack:
        stack.client = client
        gid, pk = await stack.create(2000, sendRate=300)
        await stack.mutate("sendCampaignNow(id: $id)", id=gid)
        await sending_until(stack, pk, 400)
        stack.kill("worker", signal.SIGKILL)
        # what it had in flight was accepted by the provider and is settled by the
        # status webhooks; what it had claimed and not sent is resent after the window
        stack.start_worker("worker-2")
        await finish(stack, database_url, gid, pk, 2000)


async def test_a_lease_owner_stopped_past_its_lease_sends_nothing_more(
    database_url: str, client: httpx.AsyncClient
) -> None:
    """SIGSTOP the worker holding the lease with calls in flight; the other worker takes
    over and finishes the campaign; SIGCONT: the first one's late answers settle what
    they settle, and it starts no call (the ledger does not move)."""
    with stack_for(database_url, latency_ms=150) as stack:
        stack.client = client
        stack.start_worker("worker-2")
        gid, pk = await stack.create(1500, sendRate=250)
        await stack.mutate("sendCampaignNow(id: $id)", id=gid)
        await sending_until(stack, pk, 300)
        owner = (await read_truth(database_url, pk)).lease_owner
        assert owner is not None
        pid = int(owner.split(":")[1])
        name = next(n for n, p in stack.procs.items() if p.pid == pid)
        os.kill(pid, signal.SIGSTOP)
        try:
            await stack.wait_for(gid, "COMPLETED", timeout=60)  # the other worker did the rest
            settled_ledger = await stack.ledger(pk)
        finally:
            os.kill(pid, signal.SIGCONT)
        # its renewal fails and its run ends (it says so), its late outcomes are written
        await until(lambda: "lease-lost" in (stack.logs / f"{name}.log").read_text(), 30, "lease-lost logged")
        assert (await stack.ledger(pk))["accepted"] == settled_ledger["accepted"]
        await stack.settled(gid, pk, timeout=30)
        await assert_exactly_once(stack, database_url, pk, 1500)


@pytest.mark.skipif(not ON_POSTGRES, reason="restarting the database server is a PostgreSQL fault; SQLite is a file")
async def test_postgresql_restarted_mid_send(
    database_url: str, cluster: PostgresCluster | None, client: httpx.AsyncClient
) -> None:
    assert cluster is not None
    with stack_for(database_url) as stack:
        stack.client = client
        gid, pk = await stack.create(2000, sendRate=300)
        await stack.mutate("sendCampaignNow(id: $id)", id=gid)
        await sending_until(stack, pk, 400)
        cluster.crash_restart()
        await finish(stack, database_url, gid, pk, 2000, timeout=90)
        assert all(p.poll() is None for p in stack.procs.values())  # nobody died of it


async def test_redis_restarted_mid_send_and_while_a_campaign_is_scheduled(
    database_url: str, client: httpx.AsyncClient
) -> None:
    """Redis keeps nothing on disk: the scheduled campaign's deferred job is gone after
    the restart, and the sweep starts it at its time; the sending one goes on."""
    with stack_for(database_url) as stack:
        stack.client = client
        gid, pk = await stack.create(2000, sendRate=300)
        later_gid, later_pk = await stack.create(300, first=5000)
        at = datetime.now(UTC) + timedelta(seconds=6)
        await stack.mutate("scheduleCampaign(id: $id, scheduledAt: $at)", id=later_gid, at=at.isoformat())
        await stack.mutate("sendCampaignNow(id: $id)", id=gid)
        await sending_until(stack, pk, 400)
        stack.redis.stop()
        await asyncio.sleep(2)  # the fault: two seconds without Redis
        stack.redis.start()
        await finish(stack, database_url, gid, pk, 2000, timeout=90)
        await finish(stack, database_url, later_gid, later_pk, 300, timeout=60)


async def test_answers_lost_after_the_provider_accepted(database_url: str, client: httpx.AsyncClient) -> None:
    """Some answers never come (the connection drops), some come after the worker gave
    up: those messages are in doubt, and their `sent` webhooks settle them; none is
    resent."""
    faults = {
        "SIMULATOR_LOST_ANSWER_PROBABILITY": "0.03",
        "SIMULATOR_SLOW_ANSWER_PROBABILITY": "0.03",
        "SIMULATOR_SLOW_ANSWER_MS": "2500",
        "WHATSAPP_TIMEOUT_S": "1",
    }
    with stack_for(database_url, faults) as stack:
        stack.client = client
        gid, pk = await stack.create(1000)
        await stack.mutate("sendCampaignNow(id: $id)", id=gid)
        await finish(stack, database_url, gid, pk, 1000)
        ledger = (await client.get(f"{stack.simulator}/_simulator/ledger")).json()
        assert ledger["answers_lost"] > 0 and ledger["answers_slow"] > 0  # the faults happened


async def test_the_api_killed_during_a_flood_of_webhooks_loses_no_receipt(
    database_url: str, client: httpx.AsyncClient
) -> None:
    """Every status answered 200 was durable before the answer; what was not answered is
    posted again (Meta retries), so the numbers end equal to the provider's truth."""
    flood = {"SIMULATOR_DELIVERED_PROBABILITY": "1.0", "SIMULATOR_READ_PROBABILITY": "0.8"}
    with stack_for(database_url, flood) as stack:
        stack.client = client
        gid, pk = await stack.create(2000)
        await stack.mutate("sendCampaignNow(id: $id)", id=gid)

        async def flooding() -> bool:
            body = (await client.get(f"{stack.simulator}/_simulator/ledger")).json()
            return bool(body["webhooks"]["statuses_sent"] >= 1500)

        await until(flooding, 60, "webhooks flowing", every=0.1)
        stack.kill("api", signal.SIGKILL)
        await asyncio.sleep(1.5)  # the fault: Meta's posts meet a closed port, and are retried
        stack.start_api()
        await finish(stack, database_url, gid, pk, 2000, timeout=90)
        webhooks = (await client.get(f"{stack.simulator}/_simulator/ledger")).json()["webhooks"]
        assert webhooks["retries"] > 0 and webhooks["statuses_dropped"] == 0
