"""Sending end to end (API + ONE worker + simulator) against a bare aiohttp loop, and pause latency.

    python bench/send.py [--messages 20000] [--concurrency 200] [--latency-ms 50] [--strict]

At 0 ms and --latency-ms: msg/s of a campaign sent by the real processes vs req/s of a bare aiohttp
loop against the same simulator; at --latency-ms, provider calls that arrive after pauseCampaign
returned. What runs and how it is measured: bench/README.md. Targets: service/bare >= 0.70 at both
latencies, >= 1,000 msg/s at --latency-ms, 0 calls after the pause; --strict exits 1 on a FAIL.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis
from benchkit import (
    ROOT,
    SECRETS,
    Procs,
    cpu_report,
    cpu_snapshot,
    free_port,
    get_json,
    gql,
    recreate_database,
    revision,
    service_env,
)

from domain.ids import expect_id
from runtime.keys import QUEUE
from simulator.config import SimulatorConfig
from simulator.fate import decide

CLI = (sys.executable, "-m", "cli")
NOT_YET = (OSError, aiohttp.ClientError)  # a process that is not answering yet
MIN_RATE, MIN_RATIO = 1000.0, 0.70
BARE_CAMPAIGN = 999_999  # no real campaign has this id
SHAPE = {"messaging_product": "whatsapp", "recipient_type": "individual", "type": "text"}
AUTH = {"Authorization": f"Bearer {SECRETS['SIMULATOR_ACCESS_TOKEN']}", "Content-Type": "application/json"}
VERDICT = {True: "PASS", False: "FAIL"}
Json = dict[str, Any]


@dataclasses.dataclass
class Stack:
    http: aiohttp.ClientSession
    api: str
    sim: str
    key: str = ""

    async def get(self, url: str, **params: Any) -> Json:
        return await get_json(self.http, url, **params)

    async def gql(self, query: str, **variables: Any) -> Json:
        return await gql(self.http, self.api, self.key, query, **variables)

    async def act(self, name: str, gid: str) -> str:
        query = f"mutation($id: ID!) {{ {name}(id: $id) {{ campaign {{ status }} userErrors {{ code message }} }} }}"
        payload = (await self.gql(query, id=gid))[name]
        if payload["userErrors"]:
            raise RuntimeError(f"{name}: {payload['userErrors']}")
        return str(payload["campaign"]["status"])

    async def create(self, n: int) -> tuple[str, int]:
        """A DRAFT campaign of n recipients, by CSV upload; (global id, pk)."""
        given = {"name": "bench", "body": "Hello {{name}}, your code is {{code}}", "failureThreshold": None}
        query = "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { id } } }"
        gid = str((await self.gql(query, input=given))["createCampaign"]["campaign"]["id"])
        rows = "".join(f"+1415{3000000 + i:07d},User {i},C{i:07d}\n" for i in range(n))
        url, headers = f"{self.api}/campaigns/{gid}/recipients", {"Authorization": f"Bearer {self.key}"}
        async with self.http.post(
            url, data=f"phone,name,code\n{rows}", headers=headers | {"Content-Type": "text/csv"}
        ) as response:
            report = await response.json()
        if report.get("added") != n:
            raise RuntimeError(f"the CSV import of {n} rows answered {report}")
        return gid, expect_id(gid, "Campaign")

    async def until(self, gid: str, *statuses: str) -> str:
        query = "query($id: ID!) { campaign(id: $id) { status stats { pending } } }"
        deadline = time.monotonic() + 600
        while (status := (await self.gql(query, id=gid))["campaign"]["status"]) not in statuses:
            if time.monotonic() > deadline:
                raise RuntimeError(f"campaign {gid} still {status} after 10 minutes")
            await asyncio.sleep(0.05)
        return str(status)

    async def sends(self, pk: int, limit: int = 10_000) -> tuple[int, list[Json]]:
        """(count, accepted sends) of a campaign in the simulator's ledger; limit=0 only counts."""
        found: list[Json] = []
        while True:
            page = await self.get(f"{self.sim}/_simulator/ledger/messages", campaign=pk, offset=len(found), limit=limit)
            found += page["messages"]
            if not page["messages"] or len(found) >= page["count"]:
                return int(page["count"]), found


async def bare_loop(sim: str, n: int, concurrency: int) -> tuple[float, int]:
    """(requests/s, non-200 answers): n Cloud API sends with `concurrency` in flight."""
    url, todo, bad = f"{sim}/v26.0/100000000000001/messages", iter(range(n)), 0

    async def lane(http: aiohttp.ClientSession) -> None:
        nonlocal bad
        for i in todo:
            text = {"body": f"Hello User {i}, your code is C{i:07d}", "preview_url": False}
            to, callback = f"1415{3000000 + i:07d}", f"c{BARE_CAMPAIGN}:m{i + 1}"
            data = json.dumps(
                SHAPE | {"to": to, "biz_opaque_callback_data": callback, "text": text}, separators=(",", ":")
            )
            async with http.post(url, data=data, headers=AUTH | {"Idempotency-Key": f"bare-{i}"}) as response:
                json.loads(await response.read())
                bad += response.status != 200

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(lane(http) for _ in range(concurrency)))
        return n / (time.perf_counter() - started), bad


async def pause_phase(stack: Stack, n: int, config: SimulatorConfig) -> list[bool]:
    gid, pk = await stack.create(n)
    await stack.act("sendCampaignNow", gid)
    while (await stack.sends(pk, limit=0))[0] < n // 4:  # noqa: ASYNC110 - polling another process
        await asyncio.sleep(0.02)
    asked = time.time()
    status = await stack.act("pauseCampaign", gid)
    t = time.time()  # the mutation's response arrived
    await asyncio.sleep(2)
    _, sends = await stack.sends(pk)
    after, during = sum(s["at"] > t for s in sends), sum(asked < s["at"] <= t for s in sends)
    # when each call was answered: its arrival plus the latency the seeded simulator drew for its key
    answered = [s["at"] + decide(config, s["key"], 0, plan=False).latency_s for s in sends]
    in_flight = sum(s["at"] <= t < a for s, a in zip(sends, answered, strict=True))
    last, stopped = max(s["at"] for s in sends) - t, after == 0 and status == "PAUSED"
    print(
        f"pause at {len(sends):,} sent: pauseCampaign answered in {(t - asked) * 1000:.0f} ms -> {status} (T = ", end=""
    )
    print(f"its response); {during} calls arrived while it ran, {in_flight} in flight at T finished after T")
    print(f"  last arrival {last * 1000:+.1f} ms from T; calls arrived after T: {after} (target 0) {VERDICT[stopped]}")
    await stack.act("resumeCampaign", gid)
    await stack.until(gid, "COMPLETED")
    ledger = (await stack.get(f"{stack.sim}/_simulator/ledger"))["campaigns"][str(pk)]
    once = ledger["duplicate_sends"] == 0 and ledger["distinct_message_ids"] == n
    accepted, distinct, duplicates = ledger["accepted"], ledger["distinct_message_ids"], ledger["duplicate_sends"]
    print(
        f"  resumed -> COMPLETED: {accepted:,} accepted, {distinct:,} distinct, duplicate_sends {duplicates}: ", end=""
    )
    print(VERDICT[once])
    return [stopped, once]


async def latency_phase(args: argparse.Namespace, procs: Procs, stack: Stack, latency: float) -> list[bool]:
    n, db, health = args.messages, args.database_url.rsplit("/", 1)[1], f"{QUEUE}:health-check"
    procs.spawn("simulator", *CLI, "simulator", "--port", stack.sim.rsplit(":", 1)[1], "--latency-ms", str(latency))
    await procs.wait_until("simulator", lambda: stack.get(f"{stack.sim}/_simulator/health"), NOT_YET)
    client = redis.Redis.from_url(args.redis_url)
    client.delete(health)
    procs.spawn("worker", *CLI, "worker")
    await procs.wait_until("worker", lambda: asyncio.to_thread(client.exists, health), NOT_YET)  # arq's first poll
    pids = {name: p.pid for name, p in procs.procs.items()} | {"bench": os.getpid()}
    print(f"{latency:g} ms: pids {', '.join(f'{k} {v}' for k, v in pids.items())}")
    try:
        gid, pk = await stack.create(n)
        before, started = cpu_snapshot(pids, db), time.perf_counter()
        await stack.act("sendCampaignNow", gid)
        status = await stack.until(gid, "COMPLETED", "FAILED", "PAUSED")
        elapsed = time.perf_counter() - started
        cpu, (count, sends) = cpu_report(before, cpu_snapshot(pids, db), elapsed), await stack.sends(pk)
        rate, at = n / elapsed, [s["at"] for s in sends] or [0.0]
        print(f"{latency:g} ms service: {n:,} messages in {elapsed:.2f} s = {rate:,.0f} msg/s, {status}; ", end="")
        print(f"ledger: {count:,} accepted, first->last arrival {(len(at) - 1) / (max(at) - min(at) or 1):,.0f} msg/s")
        print(cpu)
        before, started = cpu_snapshot(pids, db), time.perf_counter()
        bare, bad = await bare_loop(stack.sim, n, args.concurrency)
        cpu = cpu_report(before, cpu_snapshot(pids, db), time.perf_counter() - started)
        print(f"{latency:g} ms bare loop: {n:,} requests, {bare:,.0f} req/s, {bad} non-200\n{cpu}")
        ratio = rate / bare
        results = [ratio >= MIN_RATIO and status == "COMPLETED" and count == n and bad == 0]
        line = f"{latency:g} ms: service {rate:,.0f} msg/s, bare loop {bare:,.0f} req/s, ratio {ratio:.2f} "
        line += f"(target >= {MIN_RATIO:.2f}) {VERDICT[results[0]]}"
        if latency == args.latency_ms:
            results.append(rate >= MIN_RATE)
            line += f"; {rate:,.0f} >= {MIN_RATE:,.0f} msg/s ({rate / MIN_RATE:.2f}x) {VERDICT[results[1]]}"
        print(line)
        if latency == args.latency_ms:
            config = dataclasses.replace(SimulatorConfig.from_env(env=procs.env), latency_mean_ms=latency)
            results += await pause_phase(stack, n, config)
        return results
    finally:
        procs.stop("worker", "simulator")


async def main(args: argparse.Namespace) -> int:
    db = await recreate_database(args.database_url)
    redis.Redis.from_url(args.redis_url).flushdb()
    logs = Path(tempfile.mkdtemp(prefix="campaigns-bench-send-"))
    api, sim = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    env = service_env(
        args.database_url,
        args.redis_url,
        WHATSAPP_API_BASE=sim,
        WORKER_CONCURRENCY=str(args.concurrency),
        WHATSAPP_RATE_LIMIT=str(args.rate_limit),
        SIMULATOR_SEED="7",
    )
    print(f"code {args.revision}; database {db} (recreated), redis {args.redis_url} (flushed); logs in {logs}")
    print(
        f"{args.messages:,} messages, concurrency {args.concurrency}, ONE worker; simulator WITHOUT webhooks ", end=""
    )
    print("(SIMULATOR_WEBHOOK_URL unset: no receipts load the machine)")
    procs, results = Procs(env, logs), list[bool]()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            stack = Stack(http, api, sim)
            procs.spawn("api", *CLI, "serve", "--migrate", "--port", api.rsplit(":", 1)[1])
            await procs.wait_until("api", lambda: stack.get(f"{api}/healthz"), NOT_YET)
            argv = [sys.executable, "-m", "cli", "create-workspace", "bench"]
            made = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, env=env, stdout=subprocess.PIPE)
            stack.key = (await made.communicate())[0].decode().strip().splitlines()[-1]
            for latency in (0.0, args.latency_ms):
                results += await latency_phase(args, procs, stack, latency)
    finally:
        procs.stop()
    print(f"overall: {VERDICT[all(results)]}")
    return 1 if args.strict and not all(results) else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200, help="WORKER_CONCURRENCY and the bare loop's")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="mean simulator latency (default jitter)")
    parser.add_argument("--rate-limit", type=int, default=100_000, help="the worker's WHATSAPP_RATE_LIMIT")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/campaigns_bench_send")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12", help="this db is flushed")
    parser.add_argument("--strict", action="store_true", help="exit 1 on FAIL")
    return parser.parse_args(namespace=argparse.Namespace(revision=revision()))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so the subprocesses are stopped
    sys.exit(asyncio.run(main(parse_args())))
