"""A million recipients end to end on the production topology: import, send, receipts, dashboards.

    python bench/million.py [--recipients 1000000] [--subscribers 1000] [--rate 1000] [--strict]

PostgreSQL (its database recreated), Redis (one db, flushed; --own-redis starts a private
redis-server), TWO `cli serve`, TWO `cli worker`, ONE `cli simulator` in the Cloud API's
behaviour (no idempotency keys, one status per webhook POST; here sent, delivered and read
for every message, no duplicates, no out-of-order, no late statuses) at the --rate msg/s
throughput tier (the worker's WHATSAPP_RATE_LIMIT and the simulator's --rate-limit), no
daily messaging limit on either side. The simulator posts every webhook to api-a (it takes
one URL); --subscribers graphql-transport-ws `campaignProgress` sockets are spread over
api-a and api-b from a client process. Steps: a workspace, a campaign, --recipients rows
imported by a streamed CSV upload, sendCampaignNow, then every --sample-ms (at least
N / 2,500 ms: the ledger's view walks every message) the simulator's ledger, the campaign's
counters and each process's VmRSS, until COMPLETED and settled.
Printed: the import time; the send time against the ideal N / rate; the receipt lag p99
(bench/receipts.py's measure); the subscriber latency p99 (receipt - the event's `at`,
when its numbers were read from the database); each process's peak RSS and its growth
from 10% to 100% of the send; and at rest the ledger, the database (counters and a
GROUP BY over the messages) and every subscriber's last snapshot side by side.
Targets: send time <= 1.2x ideal, lag p99 < 2 s, subscriber p99 < 500 ms, memory flat
(api, worker: < 10% + 16 MiB growth), agreement at rest. What runs: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing as mp
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import AsyncIterator
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import redis
from benchkit import (
    EVERY_STATUS_IN_ORDER,
    ROOT,
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
from csv_import import phones
from fanout import PROTOCOL, QUERY, Subscriber, frame, recv, rss_kib
from receipts import quantiles, receipt_lags

from domain.ids import expect_id
from runtime.keys import QUEUE

CLI = (sys.executable, "-m", "cli")
NOT_YET = (OSError, aiohttp.ClientError)
MAX_SEND_RATIO, MAX_LAG_P99, MAX_SUB_P99 = 1.2, 2.0, 0.5
FLAT_SHARE, FLAT_MIB = 0.10, 16  # a process is flat when it grew < 10% + 16 MiB from 10% to 100% of the send
COUNTERS = ("total", "pending", "sent", "delivered", "read", "failed", "cancelled")
BY_STATUS = {"PENDING": ("pending",), "SENDING": ("pending",), "SENT": ("sent",), "DELIVERED": ("sent", "delivered")}
BY_STATUS |= {"READ": ("sent", "delivered", "read"), "FAILED": ("failed",), "CANCELLED": ("cancelled",)}
VERDICT = {True: "PASS", False: "FAIL"}
Json = dict[str, Any]

# ----------------------------------------------------------------------------- the client process

HIST = array("q", bytes(8 * 60_001))  # subscriber latency, 1 ms buckets, the last one for 60 s and more


class Watcher(Subscriber):
    """A fanout.Subscriber that keeps its last pushed payload and, past the first answer,
    the latency of each update (receipt - the payload's `at`) in HIST."""

    def __init__(self, hello: list[bytes]) -> None:
        super().__init__(hello)
        self.last, self.others, self.closed = b"", 0, False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        super().connection_lost(exc)

    def message(self, t: float, payload: bytes) -> None:
        if self.hello or not self.ready.done():  # the handshake, then the first snapshot
            super().message(t, payload)
            self.last = payload if self.ready.done() else self.last
            return
        start = payload.find(b'"at":') + 5
        if start == 4 or b'"errors"' in payload:
            self.others += 1
            return
        self.last, self.count = payload, self.count + 1
        value = payload[start : payload.index(b'"', payload.index(b'"', start) + 1)].strip(b' "')
        at = datetime.fromisoformat(value.decode()).timestamp()
        HIST[min(len(HIST) - 1, max(0, int((t - at) * 1000)))] += 1


def client_main(pipe: Connection) -> None:
    import uvloop  # as uvicorn's servers (uvicorn[standard])

    uvloop.run(watch(pipe))


async def watch(pipe: Connection) -> None:
    """Subscribe the sockets (alternating over the ports), send (connected, failed, s);
    then answer ("agree", stats) with how many last snapshots equal them, and ("stop",)
    with (HIST, last payloads, updates per socket, other messages, closed sockets)."""
    ports, key, gid, n = await asyncio.to_thread(pipe.recv)
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
    subscribe = {"id": "1", "type": "subscribe", "payload": {"query": QUERY, "variables": {"id": gid}}}
    frames = [frame(json.dumps(m).encode()) for m in (init, subscribe)]
    gate, subs = asyncio.Semaphore(64), list[Watcher]()

    async def one(port: int) -> None:
        upgrade = f"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        upgrade += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        upgrade += f"Sec-WebSocket-Protocol: {PROTOCOL}\r\n\r\n"
        async with gate:
            loop = asyncio.get_running_loop()
            sub = (await loop.create_connection(lambda: Watcher([upgrade.encode(), *frames]), "127.0.0.1", port))[1]
            subs.append(sub)
            await asyncio.wait_for(asyncio.shield(sub.ready), 60)

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(ports[i % len(ports)]) for i in range(n)), return_exceptions=True)
    failed = sum(isinstance(r, BaseException) for r in outcomes)
    pipe.send((n - failed, failed, time.perf_counter() - started))
    while (job := await asyncio.to_thread(pipe.recv))[0] == "agree":
        pipe.send(sum(_snapshot(s.last) == job[1] for s in subs))
    others, closed = sum(s.others for s in subs), sum(s.closed for s in subs)
    pipe.send((HIST.tobytes(), [s.last for s in subs], [s.count for s in subs], others, closed))


def _snapshot(payload: bytes) -> Json:
    """status and counters of a pushed `campaignProgress` payload ({} if none)."""
    try:
        progress = json.loads(payload)["payload"]["data"]["campaignProgress"]
    except (ValueError, KeyError, TypeError):
        return {}
    return {"status": progress["status"]} | {k: progress["stats"][k] for k in COUNTERS}


# ----------------------------------------------------------------------------- the run


def peak_kib(pid: int) -> int:
    """VmHWM: the most RSS the process ever had."""
    return int(next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x[:6] == "VmHWM:").split()[1])


class Run:
    def __init__(self, args: argparse.Namespace, procs: Procs, http: aiohttp.ClientSession) -> None:
        self.args, self.procs, self.http, self.key = args, procs, http, ""
        self.ports = {name: free_port() for name in ("api-a", "api-b", "simulator")}
        self.url = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.db: asyncpg.Connection | None = None
        procs.env["WHATSAPP_API_BASE"] = self.url["simulator"]

    async def get(self, url: str) -> Json:
        return await get_json(self.http, url)

    async def gql(self, query: str, **variables: Any) -> Json:
        return await gql(self.http, self.url["api-a"], self.key, query, **variables)

    async def start(self, redis_url: str) -> None:
        """simulator, api-a (migrating), api-b, a workspace, two workers (each up once it polls)."""
        procs, url = self.procs, self.url
        hook = f"{url['api-a']}/webhooks/whatsapp"
        sim = ["--port", str(self.ports["simulator"]), "--latency-ms", str(self.args.latency_ms)]
        procs.spawn("simulator", *CLI, "simulator", *sim, "--rate-limit", str(self.args.rate), "--webhook-url", hook)
        await procs.wait_until("simulator", lambda: self.get(f"{url['simulator']}/_simulator/health"), NOT_YET)
        for name, migrate in (("api-a", ["--migrate"]), ("api-b", [])):
            procs.spawn(name, *CLI, "serve", *migrate, "--port", str(self.ports[name]))
            await procs.wait_until(name, functools.partial(self.get, f"{url[name]}/healthz"), NOT_YET)
        made = await asyncio.create_subprocess_exec(
            *CLI, "create-workspace", "million", cwd=ROOT, env=procs.env, stdout=subprocess.PIPE
        )
        self.key = (await made.communicate())[0].decode().strip().splitlines()[-1]
        client, health = redis.Redis.from_url(redis_url), f"{QUEUE}:health-check"
        for name in ("worker-a", "worker-b"):
            client.delete(health)
            procs.spawn(name, *CLI, "worker")
            await procs.wait_until(name, lambda: asyncio.to_thread(client.exists, health), NOT_YET)

    async def create(self, n: int) -> tuple[str, int, float]:
        """A DRAFT campaign of n recipients by a streamed CSV upload; (global id, pk, import seconds)."""
        given = {"name": "million", "body": "Hello {{name}}", "failureThreshold": None}
        query = "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { id } } }"
        gid = str((await self.gql(query, input=given))["createCampaign"]["campaign"]["id"])

        async def rows() -> AsyncIterator[bytes]:
            yield b"phone,name\n"
            chunk = []
            for i, phone in enumerate(phones(n)):
                chunk.append(f"{phone},User {i}\n")
                if len(chunk) == 20_000:
                    yield "".join(chunk).encode()
                    chunk = []
            yield "".join(chunk).encode()

        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "text/csv"}
        started = time.perf_counter()
        url, timeout = f"{self.url['api-a']}/campaigns/{gid}/recipients", aiohttp.ClientTimeout(total=None)
        async with self.http.post(url, data=rows(), headers=headers, timeout=timeout) as response:
            report = await response.json()
        if report.get("added") != n:
            raise RuntimeError(f"the CSV import of {n:,} rows answered {report}")
        return gid, expect_id(gid, "Campaign"), time.perf_counter() - started

    async def counters(self, pk: int) -> Json:
        assert self.db is not None
        row = await self.db.fetchrow(
            "SELECT status, completed_at, " + ", ".join(f'"{c}"' for c in COUNTERS) + " FROM campaign WHERE id = $1", pk
        )
        return dict(row) if row else {}

    async def grouped(self, pk: int) -> dict[str, int]:
        """The counters, counted from the message rows (docs/DESIGN.md, Numbers)."""
        assert self.db is not None
        counted = dict.fromkeys(COUNTERS, 0)
        for row in await self.db.fetch(
            "SELECT status, COUNT(*) AS n FROM message WHERE campaign_id = $1 GROUP BY status", pk
        ):
            for name in ("total", *BY_STATUS[row["status"]]):
                counted[name] += row["n"]
        return counted


def expected(ledger: Json) -> dict[str, int]:
    """The counters the campaign must settle on, from what the simulator decided for each message."""
    final = ledger["final"]
    sent = final["sent"] + final["delivered"] + final["read"]
    return {"sent": sent, "delivered": final["delivered"] + final["read"], "read": final["read"]} | {
        "failed": final["failed"] + final["rejected"]
    }


async def sample(run: Run, pk: int, n: int, sent_at: float, pids: dict[str, int]) -> tuple[list[Any], Json, Json]:
    """Every --sample-ms until COMPLETED and the counters equal the ledger's final numbers
    with no webhook pending: [(t, posted delivered, posted read, counted delivered,
    counted read, processed, {process: VmRSS KiB}, statuses waiting in the simulator)],
    the last counters and ledger."""
    samples, deadline, tenth = list[Any](), time.monotonic() + n / run.args.rate * 3 + 300, 0
    # the ledger's view walks every message (about 37 ms at 1,000,000): under a tenth of the simulator's loop
    period = max(run.args.sample_ms / 1000, n / 2_500_000)
    while True:
        t = time.time() - sent_at
        ledger, counters = await run.get(f"{run.url['simulator']}/_simulator/ledger"), await run.counters(pk)
        kinds, mine = ledger["webhooks"]["sent_by_kind"], ledger["campaigns"].get(str(pk))
        rss = {name: rss_kib(pid) for name, pid in pids.items()}
        processed = counters["total"] - counters["pending"]
        waiting = ledger["webhooks"]["statuses_pending"]
        samples.append(
            (t, kinds["delivered"], kinds["read"], counters["delivered"], counters["read"], processed, rss, waiting)
        )
        if processed * 10 >= (tenth + 1) * n or (processed == n and int(t) // 30 > int(samples[-2][0]) // 30):
            tenth = processed * 10 // n
            hooks, memory = ledger["webhooks"], "/".join(f"{v // 1024}" for v in rss.values())
            print(
                f"  {t:7.1f} s: {processed / n:4.0%} processed; statuses {hooks['statuses_sent']:,} posted, "
                f"{hooks['statuses_pending']:,} waiting in the simulator; counted delivered {counters['delivered']:,}"
                f", read {counters['read']:,}; RSS MiB {memory}",
                flush=True,
            )
        if rss["simulator"] > run.args.max_simulator_mib * 1024:
            raise RuntimeError(f"the simulator's RSS passed --max-simulator-mib ({ledger['webhooks']})")
        done = counters["status"] == "COMPLETED" and ledger["webhooks"]["statuses_pending"] == 0
        if done and mine and all(counters[k] == v for k, v in expected(mine).items()):
            return samples, counters, ledger
        if time.monotonic() > deadline:
            raise RuntimeError(f"not settled: {counters} {ledger['webhooks']}")
        await asyncio.sleep(period)


def memory(samples: list[Any], n: int, pids: dict[str, int], peaks: dict[str, int]) -> bool:
    """Per process: peak, RSS at 10% and at 100% of the send; True when api and workers are flat."""
    at10 = next(s for s in samples if s[5] >= n // 10)[6]
    at100, waiting = next(s[6:] for s in samples if s[5] >= n)
    flat = True
    for name in pids:
        grew = at100[name] - at10[name]
        ok = grew < at10[name] * FLAT_SHARE + FLAT_MIB * 1024
        per = f"{grew * 1024 / (n - n // 10):+,.0f} B/message"
        if name == "simulator":  # its ledger keeps a record of every accepted send, by design
            verdict = f"grows by design: its ledger keeps every send, {waiting:,} statuses wait (not judged)"
        else:
            flat, verdict = flat and ok, "flat" if ok else "GROWS"
        print(
            f"  {name}: peak {peaks[name] / 1024:,.0f} MiB; RSS {at10[name] / 1024:,.0f} MiB at 10% -> "
            f"{at100[name] / 1024:,.0f} MiB at 100% of the send ({per}): {verdict}"
        )
    return flat


async def bench(run: Run, pipe: Connection, redis_url: str, client_pid: int) -> list[bool]:
    args, n = run.args, run.args.recipients
    await run.start(redis_url)
    pids = {name: proc.pid for name, proc in run.procs.procs.items() if name != "redis"}
    print(f"pids: {', '.join(f'{k} {v}' for k, v in pids.items())}; webhooks to api-a; subscribers on api-a and api-b")
    gid, pk, import_s = await run.create(n)
    print(f"import: {n:,} rows by CSV upload (streamed) in {import_s:.1f} s = {n / import_s:,.0f} rows/s")
    pipe.send(([run.ports["api-a"], run.ports["api-b"]], run.key, gid, args.subscribers))
    connected, failed, seconds = await recv(pipe, 600)
    print(f"subscribers: {connected:,}/{args.subscribers:,} subscribed in {seconds:.1f} s ({failed} failed)")

    measured = pids | {"bench": os.getpid(), "subscribers": client_pid}
    cpu0, sent_at = cpu_snapshot(measured, args.db), time.time()
    query = "mutation($id: ID!) { sendCampaignNow(id: $id) { campaign { status } userErrors { message } } }"
    if errors := (await run.gql(query, id=gid))["sendCampaignNow"]["userErrors"]:
        raise RuntimeError(f"sendCampaignNow: {errors}")
    samples, counters, ledger = await sample(run, pk, n, sent_at, pids)
    settled = samples[-1][0]
    print(cpu_report(cpu0, cpu_snapshot(measured, args.db), settled))
    peaks = {name: peak_kib(pid) for name, pid in pids.items()}

    send_s, ideal = counters["completed_at"].timestamp() - sent_at, n / args.rate
    verdicts = [send_s <= ideal * MAX_SEND_RATIO]
    print(
        f"send: sendCampaignNow -> COMPLETED in {send_s:,.1f} s against the ideal {ideal:,.0f} s ({n:,} / {args.rate:,}"
        f"/s): {send_s / ideal:.2f}x (target <= {MAX_SEND_RATIO}x) {VERDICT[verdicts[-1]]}; settled at {settled:,.1f} s"
    )
    webhooks = ledger["webhooks"]
    print(
        f"  simulator: {ledger['requests']:,} requests, {ledger['rate_limited']:,} refused 130429; "
        f"{webhooks['statuses_sent']:,} statuses in {webhooks['sent']:,} POSTs to api-a, {webhooks['retries']} retries,"
        f" answered p50 {webhooks['answers']['p50_ms']} ms p99 {webhooks['answers']['p99_ms']} ms"
    )
    late = webhooks["late"]
    print(
        f"  the simulator's own delay (a status due -> its POST started; Meta posts on time): "
        f"p50 {late['p50_ms']} ms, p99 {late['p99_ms']} ms of the last 10,000, at most {late['max_ms'] / 1000:,.1f} s "
        "(not judged: the receipt lag below starts at the POST)"
    )
    for label, posted, counted in (("delivered", 1, 3), ("read", 2, 4)):
        p50, p99 = quantiles(receipt_lags(samples, posted, counted, n))
        verdicts.append(p99 < MAX_LAG_P99)
        print(
            f"receipt lag ({label}): posted -> counted p50 {p50:.2f} s, p99 {p99:.2f} s (sampled every "
            f"{settled / len(samples) * 1000:.0f} ms, mean; target p99 < {MAX_LAG_P99:g} s) {VERDICT[verdicts[-1]]}"
        )

    agreeing, truth, deadline = 0, {"status": "COMPLETED"} | {k: counters[k] for k in COUNTERS}, time.monotonic() + 30
    while agreeing < connected and time.monotonic() < deadline:
        pipe.send(("agree", truth))
        if (agreeing := await recv(pipe, 60)) < connected:
            await asyncio.sleep(0.2)
    pipe.send(("stop",))
    hist, lasts, updates, others, closed = await recv(pipe, 120)
    latencies = array("q", hist)
    total, p = sum(latencies), {}
    for q in (0.50, 0.99):
        seen = 0
        p[q] = next(i for i, c in enumerate(latencies) if (seen := seen + c) >= q * total) / 1000 if total else 1e9
    verdicts.append(p[0.99] < MAX_SUB_P99)
    print(
        f"subscribers: {total:,} updates ({min(updates or [0]):,}-{max(updates or [0]):,} per socket), {others} other "
        f"messages, {closed} sockets closed; latency (receipt - event `at`) p50 {p[0.50] * 1000:,.0f} ms, p99 "
        f"{p[0.99] * 1000:,.0f} ms (target < {MAX_SUB_P99 * 1000:.0f} ms) {VERDICT[verdicts[-1]]}"
    )
    print("memory (VmHWM, VmRSS sampled with the counters):")
    verdicts.append(memory(samples, n, pids, peaks))
    print(f"memory flat (api, workers: grew < {FLAT_SHARE:.0%} + {FLAT_MIB} MiB): {VERDICT[verdicts[-1]]}")

    grouped, mine = await run.grouped(pk), ledger["campaigns"][str(pk)]
    stats = list(map(_snapshot, lasts))
    print(
        f"at rest: ledger {mine['accepted']:,} accepted, {mine['distinct_message_ids']:,} distinct, "
        f"{mine['duplicate_sends']} duplicate sends, final {mine['final']}\n"
        f"  database: counters {truth}\n  GROUP BY over messages {grouped}\n"
        f"  subscribers: {sum(s == truth for s in stats):,}/{len(stats):,} last snapshots equal the counters"
    )
    agree = (
        mine["accepted"] == mine["distinct_message_ids"] == n
        and mine["duplicate_sends"] == 0
        and all(counters[k] == v for k, v in expected(mine).items())
        and grouped == {k: counters[k] for k in COUNTERS}
        and connected == args.subscribers == len(stats)
        and all(s == truth for s in stats)
    )
    verdicts.append(agree)
    print(f"agreement at rest (ledger = database = GROUP BY = every last snapshot): {VERDICT[agree]}")
    errors = {name: run.procs.errors(name) for name in pids}
    print(f"ERROR lines logged: {errors}")
    return verdicts


async def main(args: argparse.Namespace) -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by every subprocess
    args.db = await recreate_database(args.database_url)
    logs = Path(tempfile.mkdtemp(prefix="campaigns-bench-million-"))
    redis_url = f"redis://127.0.0.1:{free_port()}/0" if args.own_redis else args.redis_url
    env = service_env(
        args.database_url,
        redis_url,
        WHATSAPP_RATE_LIMIT=str(args.rate),
        WORKER_CONCURRENCY=str(args.concurrency),
        **EVERY_STATUS_IN_ORDER,
        SIMULATOR_WEBHOOK_CONCURRENCY=str(args.webhook_concurrency),
    )
    procs, client = Procs(env, logs), mp.get_context("spawn")
    print(f"code {args.revision}; database {args.db} (recreated); redis {redis_url} (", end="")
    print(f"{'its own redis-server' if args.own_redis else 'flushed'}); logs in {logs}")
    print(
        f"{args.recipients:,} recipients, {args.subscribers:,} subscribers, {args.rate:,} msg/s tier, simulator ",
        end="",
    )
    print(
        f"{args.latency_ms:g} ms, WORKER_CONCURRENCY {args.concurrency}, webhook concurrency {args.webhook_concurrency}"
    )
    mine, theirs = client.Pipe()
    watcher = client.Process(target=client_main, args=(theirs,), daemon=True)
    try:
        if args.own_redis:
            port = redis_url.rsplit(":", 1)[1].split("/")[0]
            procs.spawn("redis", shutil.which("redis-server") or "redis-server", "--port", port, "--save", "")
            await procs.listening("redis", int(port))
        redis.Redis.from_url(redis_url).flushdb()
        watcher.start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            run = Run(args, procs, http)
            run.db = await asyncpg.connect(args.database_url.replace("postgres://", "postgresql://", 1))
            try:
                verdicts = await bench(run, mine, redis_url, watcher.pid or 0)
            finally:
                await run.db.close()
    finally:
        watcher.kill()
        procs.stop()
    print(f"overall: {VERDICT[all(verdicts)]}")
    return 1 if args.strict and not all(verdicts) else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--subscribers", type=int, default=1000, help="campaignProgress sockets, half on each API")
    parser.add_argument(
        "--rate", type=int, default=1000, help="the throughput tier: WHATSAPP_RATE_LIMIT and the simulator's"
    )
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the simulator's mean answer latency")
    parser.add_argument("--concurrency", type=int, default=400, help="WORKER_CONCURRENCY")
    parser.add_argument("--webhook-concurrency", type=int, default=64, help="the simulator's webhook POSTs in flight")
    parser.add_argument("--sample-ms", type=float, default=200.0, help="ledger, counters and RSS sampling period")
    parser.add_argument(
        "--max-simulator-mib",
        type=int,
        default=12288,
        help="stop the run when the simulator's RSS passes this (its webhook backlog lives in memory)",
    )
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/campaigns_bench_million")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5", help="this db is flushed")
    parser.add_argument(
        "--own-redis", action="store_true", help="start a private redis-server (pub/sub is server-wide)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 on FAIL")
    return parser.parse_args(namespace=argparse.Namespace(revision=revision()))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so the subprocesses are stopped
    sys.exit(asyncio.run(main(parse_args())))
