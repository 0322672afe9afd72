"""Sending throughput end to end (API + one worker + simulator), against a bare aiohttp loop,
and how fast a pause stops provider calls.

    python bench/send.py [--messages 20000] [--concurrency 200] [--latency-ms 50] [--strict]

Drops and recreates the PostgreSQL database, flushes its own Redis db, then starts the real
processes (`cli serve --migrate`, and per latency a fresh `cli simulator --latency-ms L` and
ONE `cli worker` with WORKER_CONCURRENCY=C, WHATSAPP_RATE_LIMIT=100000). The simulator posts
no webhooks (SIMULATOR_WEBHOOK_URL unset), so receipts add no load. For 0 ms and L ms:
  service: CSV upload of N recipients, sendCampaignNow, polled every 50 ms until COMPLETED;
           also the rate between the first and last arrival in the simulator's ledger;
  bare:    one aiohttp ClientSession (TCPConnector limit C), N Cloud API POSTs to the same
           simulator with C in flight (campaign 999999 in the callback data), stock asyncio
           loop like the arq worker's.
At L ms only: pause a N-recipient campaign once N/4 are sent; count provider calls that
arrived after the mutation returned (simulator `at`), then resume and check it completes
with no duplicate send. CPU per process (from /proc) is printed for each timed phase.
Targets: at L ms service >= 1,000 msg/s; service/bare >= 0.70 at both latencies.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import redis

from bench.csv_import import free_port, recreate_database, revision
from simulator.config import SimulatorConfig
from simulator.fate import decide

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/campaigns_bench_send"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"
MIN_RATE, MIN_RATIO, BARE_CAMPAIGN = 1000.0, 0.70, 999_999
BODY = "Hello {{name}}, your code is {{code}}"
TICK = os.sysconf("SC_CLK_TCK")
Json = dict[str, Any]


class Procs:
    """The subprocesses of this run; every one is killed at the end, also on error."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.procs = env, logs, dict[str, subprocess.Popen[bytes]]()

    def spawn(self, name: str, *args: str, extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cli", *args], cwd=ROOT, env=self.env | (extra or {}), stdout=log, stderr=log
            )
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    async def wait_http(self, name: str, url: str, http: aiohttp.ClientSession) -> None:
        for _ in range(300):
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {(self.logs / f'{name}.log').read_text()[-2000:]}")
            try:
                async with http.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{name} did not answer at {url}")


# ------------------------------------------------------------------- CPU use


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _pids_named(comm: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == comm:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def cpu_snapshot(pids: dict[str, int]) -> dict[str, dict[int, int]]:
    snap = {name: {pid: _ticks(pid)} for name, pid in pids.items()}
    snap |= {name: {p: _ticks(p) for p in _pids_named(comm)} for name, comm in (("postgres", "postgres"),
                                                                                    ("redis", "redis-server"))}
    line = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in line]
    snap["machine"] = {0: sum(values) - values[3] - values[4], 1: sum(values), 2: values[7] if len(values) > 7 else 0}
    return snap


def cpu_report(before: dict[str, dict[int, int]], after: dict[str, dict[int, int]], seconds: float) -> str:
    def pct(name: str) -> float:
        return sum(t - before[name].get(p, 0) for p, t in after[name].items()) / TICK / seconds * 100

    parts = [f"{name} {pct(name):.0f}%" for name in after if name != "machine"]
    m0, m1 = before["machine"], after["machine"]
    total = m1[1] - m0[1] or 1
    busy, steal = (m1[0] - m0[0]) / total, (m1[2] - m0[2]) / total
    cpus = os.cpu_count() or 1
    return (f"  CPU (% of one core): {', '.join(parts)}; machine {busy * cpus * 100:.0f}% of {cpus * 100}% busy"
            f" (steal {steal * cpus * 100:.0f}%)")


# ----------------------------------------------------------------- the API


@dataclasses.dataclass
class Api:
    http: aiohttp.ClientSession
    url: str
    key: str = ""

    async def gql(self, query: str, **variables: Any) -> Json:
        headers = {"Authorization": f"Bearer {self.key}"}
        async with self.http.post(f"{self.url}/graphql", json={"query": query, "variables": variables},
                                  headers=headers) as response:
            body = await response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return dict(body["data"])

    async def act(self, name: str, gid: str) -> str:
        data = await self.gql(f"mutation($id: ID!) {{ {name}(id: $id) {{ campaign {{ status }} "
                              "userErrors { code message } } }", id=gid)
        if data[name]["userErrors"]:
            raise RuntimeError(f"{name}: {data[name]['userErrors']}")
        return str(data[name]["campaign"]["status"])

    async def create(self, n: int) -> tuple[str, int]:
        """A DRAFT campaign of n recipients by CSV upload; (global id, pk)."""
        data = await self.gql("mutation($input: CreateCampaignInput!) { createCampaign(input: $input) "
                              "{ campaign { id } } }", input={"name": "bench", "body": BODY, "failureThreshold": None})
        gid = str(data["createCampaign"]["campaign"]["id"])
        rows = "".join(f"+1415{3000000 + i:07d},User {i},C{i:07d}\n" for i in range(n))
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "text/csv"}
        async with self.http.post(f"{self.url}/campaigns/{gid}/recipients", data=f"phone,name,code\n{rows}",
                                  headers=headers) as response:
            added = (await response.json())["added"]
        if added != n:
            raise RuntimeError(f"CSV import added {added} of {n}")
        from domain.ids import expect_id

        return gid, expect_id(gid, "Campaign")

    async def until(self, gid: str, done: Callable[[Json], bool], timeout: float = 600) -> Json:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            campaign = (await self.gql("query($id: ID!) { campaign(id: $id) { status stats { pending } } }",
                                       id=gid))["campaign"]
            if done(campaign):
                return dict(campaign)
            await asyncio.sleep(0.05)
        raise RuntimeError(f"campaign {gid} not done after {timeout}s")


async def ledger_sends(http: aiohttp.ClientSession, sim: str, pk: int) -> list[Json]:
    sends: list[Json] = []
    while True:
        async with http.get(f"{sim}/_simulator/ledger/messages",
                            params={"campaign": pk, "offset": len(sends), "limit": 10000}) as response:
            page = (await response.json())["messages"]
        if not page:
            return sends
        sends.extend(page)


async def ledger_of(http: aiohttp.ClientSession, sim: str, pk: int) -> Json:
    async with http.get(f"{sim}/_simulator/ledger") as response:
        return dict((await response.json())["campaigns"].get(str(pk), {}))


def ledger_rate(sends: list[Json]) -> float:
    at = [s["at"] for s in sends]
    return (len(at) - 1) / (max(at) - min(at)) if len(at) > 1 else 0.0


# ---------------------------------------------------------------- the phases


async def bare_loop(sim: str, n: int, concurrency: int) -> tuple[float, int]:
    """(requests/s, non-200 answers) of n Cloud API sends with `concurrency` in flight."""
    url = f"{sim}/v21.0/100000000000001/messages"
    connector = aiohttp.TCPConnector(limit=concurrency)
    counter, bad = iter(range(n)), 0

    async def lane(http: aiohttp.ClientSession) -> None:
        nonlocal bad
        for i in counter:
            payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": f"1415{3000000 + i:07d}",
                       "biz_opaque_callback_data": f"c{BARE_CAMPAIGN}:m{i + 1}", "type": "text",
                       "text": {"body": f"Hello User {i}, your code is C{i:07d}", "preview_url": False}}
            headers = {"Authorization": "Bearer dev-token", "Content-Type": "application/json",
                       "Idempotency-Key": f"bare-{i}"}
            async with http.post(url, data=json.dumps(payload, separators=(",", ":")), headers=headers) as response:
                json.loads(await response.read())
                bad += response.status != 200

    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(lane(http) for _ in range(concurrency)))
        return n / (time.perf_counter() - started), bad


async def pause_phase(api: Api, sim: str, n: int, config: SimulatorConfig) -> list[bool]:
    gid, pk = await api.create(n)
    await api.act("sendCampaignNow", gid)
    while (await ledger_of(api.http, sim, pk)).get("accepted", 0) < n // 4:
        await asyncio.sleep(0.02)
    asked = time.time()
    status = await api.act("pauseCampaign", gid)
    returned = time.time()
    await asyncio.sleep(2)
    sends = await ledger_sends(api.http, sim, pk)
    after = sum(s["at"] > returned for s in sends)
    last = max(s["at"] for s in sends)
    # each call's answer time: its arrival plus the latency the simulator drew for it (seeded)
    finishing = sum(s["at"] <= returned < s["at"] + decide(config, s["key"], 0, plan=False).latency_s
                    for s in sends)
    during = sum(asked < s["at"] <= returned for s in sends)
    print(f"pause at {len(sends):,} sent: pauseCampaign took {(returned - asked) * 1000:.0f} ms -> {status}; "
          f"{during} calls arrived while it ran")
    print(f"  calls arrived after it returned: {after} (target 0) {'PASS' if after == 0 else 'FAIL'}; "
          f"last arrival {(last - returned) * 1000:+.1f} ms from the return; "
          f"{finishing} calls in flight at the return finished after it")
    await api.act("resumeCampaign", gid)
    await api.until(gid, lambda c: c["status"] == "COMPLETED")
    ledger = await ledger_of(api.http, sim, pk)
    once = ledger["duplicate_sends"] == 0 and ledger["distinct_message_ids"] == n
    print(f"  resumed -> COMPLETED: {ledger['accepted']:,} accepted, {ledger['distinct_message_ids']:,} distinct, "
          f"duplicate_sends {ledger['duplicate_sends']} {'PASS' if once else 'FAIL'}")
    return [after == 0 and status == "PAUSED", once]


async def latency_phase(args: argparse.Namespace, procs: Procs, api: Api, sim: str, latency: float) -> list[bool]:
    n, c = args.messages, args.concurrency
    sim_port = sim.rsplit(":", 1)[1]
    procs.spawn("simulator", "simulator", "--port", sim_port, "--latency-ms", str(latency))
    await procs.wait_http("simulator", f"{sim}/_simulator/health", api.http)
    procs.spawn("worker", "worker")
    await asyncio.sleep(2)  # arq startup: ORM, Redis, control subscription
    pids = {name: p.pid for name, p in procs.procs.items()} | {"bench": os.getpid()}
    try:
        gid, pk = await api.create(n)
        before, started = cpu_snapshot(pids), time.perf_counter()
        await api.act("sendCampaignNow", gid)
        done = await api.until(gid, lambda c: c["status"] in ("COMPLETED", "FAILED", "PAUSED"))
        elapsed = time.perf_counter() - started
        cpu = cpu_report(before, cpu_snapshot(pids), elapsed)
        rate, sends = n / elapsed, await ledger_sends(api.http, sim, pk)
        print(f"{latency:g} ms service: {n:,} messages in {elapsed:.2f} s = {rate:,.0f} msg/s "
              f"(ledger first->last arrival {ledger_rate(sends):,.0f} msg/s; {len(sends):,} accepted; {done['status']})")
        print(cpu)
        before, started = cpu_snapshot(pids), time.perf_counter()
        bare, bad = await bare_loop(sim, n, c)
        print(f"{latency:g} ms bare loop: {bare:,.0f} req/s ({bad} non-200)")
        print(cpu_report(before, cpu_snapshot(pids), time.perf_counter() - started))
        ratio = rate / bare
        results = [ratio >= MIN_RATIO and done["status"] == "COMPLETED" and len(sends) == n and bad == 0]
        line = (f"{latency:g} ms: service {rate:,.0f} msg/s, bare loop {bare:,.0f} req/s, "
                f"ratio {ratio:.2f} (target >= {MIN_RATIO:.2f}) {'PASS' if results[0] else 'FAIL'}")
        if latency == args.latency_ms:
            results.append(rate >= MIN_RATE)
            line += f"; {rate:,.0f} >= {MIN_RATE:,.0f} msg/s ({rate / MIN_RATE:.2f}x) {'PASS' if results[1] else 'FAIL'}"
            print(line)
            config = dataclasses.replace(SimulatorConfig.from_env(env=procs.env), latency_mean_ms=latency)
            results += await pause_phase(api, sim, n, config)
        else:
            print(line)
        return results
    finally:
        procs.stop("worker")
        procs.stop("simulator")


async def main(args: argparse.Namespace) -> int:
    await recreate_database(args.database_url)
    redis.Redis.from_url(args.redis_url).flushdb()
    logs = Path(tempfile.mkdtemp(prefix="campaigns-bench-send-"))
    api_url, sim = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMULATOR_")} | {
        "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url, "WHATSAPP_API_BASE": sim,
        "WORKER_CONCURRENCY": str(args.concurrency), "WHATSAPP_RATE_LIMIT": "100000", "LOG_LEVEL": "WARNING",
        "SIMULATOR_SEED": "7", "PYTHONPATH": str(ROOT)}
    print(f"code {revision()}; database {args.database_url.rsplit('/', 1)[1]} (dropped and recreated), "
          f"redis {args.redis_url} (flushed); {args.messages:,} messages, concurrency {args.concurrency}, "
          f"one worker; simulator without webhooks (no receipts); logs in {logs}")
    procs = Procs(env, logs)
    results: list[bool] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            api = Api(http, api_url)
            procs.spawn("api", "serve", "--migrate", "--port", api_url.rsplit(":", 1)[1])
            await procs.wait_http("api", f"{api_url}/healthz", http)
            made = subprocess.run([sys.executable, "-m", "cli", "create-workspace", "bench"], cwd=ROOT, env=env,
                                  capture_output=True, text=True, check=True)
            api.key = made.stdout.strip().splitlines()[-1]
            for latency in (0.0, args.latency_ms):
                results += await latency_phase(args, procs, api, sim, latency)
    finally:
        procs.stop_all()
    print(f"overall: {'PASS' if all(results) else 'FAIL'}")
    return 1 if args.strict and not all(results) else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200, help="WORKER_CONCURRENCY and the bare loop's")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="mean simulator latency (default jitter)")
    parser.add_argument("--database-url", default=DEFAULT_DB, help="dropped and recreated")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help="this db is flushed")
    parser.add_argument("--strict", action="store_true", help="exit 1 on FAIL")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
