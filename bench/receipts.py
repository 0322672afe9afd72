"""Status webhooks at Meta's volume: what one API process sustains, and the receipt lag.

    python bench/receipts.py [--webhooks 30000] [--connections 64] [--messages 20000] [--rate 1000]

1. Throughput: signed webhooks with ONE status each (as Meta mostly posts them), posted
   by --connections keep-alive connections, to `cli serve` (one uvicorn process, which
   also applies what it receives) and to a bare Starlette endpoint under uvicorn that
   checks the same HMAC and answers 200. Prints requests/s of both, the ratio (target
   >= 0.50), p50/p99 of the answers (Meta wants a median under 250 ms), and how long
   the service then took to apply everything it had answered 200.
2. Receipt lag: ONE worker sends --messages at --rate msg/s through the simulator (in
   the Cloud API's behaviour: one status per POST; here three per message, sent,
   delivered and read), while the bench samples every 100 ms the statuses the simulator
   has had answered 200 and the campaign's counters in the database. The lag of the
   k-th `delivered` (or `read`) is the time from the moment k of them were posted to
   the moment the counter reached k. Prints p50/p99 (target p99 < 2 s), the send rate
   and the simulator's view of the webhook answer times.
PostgreSQL (its database recreated) and the machine's Redis (one db, flushed).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import hmac
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import redis
from benchkit import (
    EVERY_STATUS_IN_ORDER,
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
    ticks,
)

from domain.ids import expect_id

CLI = (sys.executable, "-m", "cli")
NOT_YET = (OSError, aiohttp.ClientError)
MIN_RATIO, MAX_LAG_P99 = 0.50, 2.0
VERDICT = {True: "PASS", False: "FAIL"}
SECRET = SECRETS["WHATSAPP_APP_SECRET"]
HERE = str(Path(__file__).resolve())


def bare_app() -> None:
    """`python bench/receipts.py --bare PORT`: the baseline, HMAC checked, 200."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    key = SECRET.encode()

    async def webhook(request: Request) -> Response:
        body = await request.body()
        given = request.headers.get("x-hub-signature-256", "")
        if not hmac.compare_digest("sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(), given):
            return JSONResponse({"error": "bad signature"}, 401)
        return JSONResponse({"received": True})

    app = Starlette(routes=[Route("/webhooks/whatsapp", webhook, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=False, log_level="warning")


def status_body(pk: int, mid: int, state: str) -> bytes:
    change = {
        "field": "messages",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000001", "phone_number_id": "100000000000001"},
            "statuses": [
                {
                    "id": f"wamid.B{mid}",
                    "status": state,
                    "timestamp": str(int(time.time())),
                    "recipient_id": "14155550000",
                    "biz_opaque_callback_data": f"c{pk}:m{mid}:r0",
                    "pricing": {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"},
                }
            ],
        },
    }
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "200000000000001", "changes": [change]}]}
    return json.dumps(payload, separators=(",", ":")).encode()


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


WRK_SCRIPT = """
local requests, i = {}, 0
init = function(args)
  for line in io.lines(args[1]) do
    local signature, body = line:match("([^\t]+)\t(.*)")
    requests[#requests + 1] = wrk.format("POST", nil,
      {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = signature}, body)
  end
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
"""


async def wrk(url: str, bodies: list[bytes], connections: int, seconds: float) -> tuple[float, float, float, int, int]:
    """wrk (C, one thread) posting the bodies in turn for `seconds`: (requests/s, p50 s,
    p99 s, non-2xx, requests). A loader that costs the machine little CPU per request."""
    with tempfile.TemporaryDirectory() as tmp:
        lines, script = Path(tmp) / "bodies.tsv", Path(tmp) / "post.lua"
        await asyncio.to_thread(
            lines.write_bytes, b"".join(signed(b)["X-Hub-Signature-256"].encode() + b"\t" + b + b"\n" for b in bodies)
        )
        await asyncio.to_thread(script.write_text, WRK_SCRIPT)
        argv = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--latency",
            "-s",
            str(script),
            url,
            "--",
            str(lines),
        ]
        done = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = (await done.communicate())[0].decode()
    rate = float(out.split("Requests/sec:")[1].split()[0])
    quantile = {q: _duration(out.split(f" {q}%")[1].split()[0]) for q in ("50", "99")}
    bad = int(out.split("Non-2xx or 3xx responses:")[1].split()[0]) if "Non-2xx" in out else 0
    requests = int(out.split(" requests in ")[0].split()[-1])
    return rate, quantile["50"], quantile["99"], bad, requests


def _duration(text: str) -> float:
    for unit, scale in (("us", 1e-6), ("ms", 1e-3), ("s", 1.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)


async def flood(url: str, bodies: list[bytes], connections: int) -> tuple[float, list[float], int]:
    """(requests/s, answer times, non-200) posting every body once."""
    todo, times, bad = iter(bodies), list[float](), 0

    async def lane(http: aiohttp.ClientSession) -> None:
        nonlocal bad
        for body in todo:
            started = time.perf_counter()
            async with http.post(url, data=body, headers=signed(body)) as response:
                await response.read()
                bad += response.status != 200
            times.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(lane(http) for _ in range(connections)))
        return len(bodies) / (time.perf_counter() - started), times, bad


def quantiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


class Bench:
    def __init__(self, args: argparse.Namespace, procs: Procs, http: aiohttp.ClientSession) -> None:
        self.args, self.procs, self.http = args, procs, http
        self.api = f"http://127.0.0.1:{free_port()}"
        self.key = ""
        self.db: asyncpg.Connection | None = None

    async def get(self, url: str) -> dict[str, Any]:
        return await get_json(self.http, url)

    async def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        return await gql(self.http, self.api, self.key, query, **variables)

    async def create(self, n: int) -> tuple[str, int]:
        given = {"name": "bench", "body": "Hello {{name}}", "failureThreshold": None}
        query = "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { id } } }"
        gid = str((await self.gql(query, input=given))["createCampaign"]["campaign"]["id"])
        rows = "".join(f"+1415{3000000 + i:07d},User {i}\n" for i in range(n))
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "text/csv"}
        async with self.http.post(
            f"{self.api}/campaigns/{gid}/recipients", data=f"phone,name\n{rows}", headers=headers
        ) as r:
            if (await r.json()).get("added") != n:
                raise RuntimeError("CSV import failed")
        return gid, expect_id(gid, "Campaign")

    async def counters(self, pk: int) -> dict[str, int]:
        assert self.db is not None
        row = await self.db.fetchrow('SELECT status, sent, delivered, "read", pending FROM campaign WHERE id = $1', pk)
        return dict(row) if row else {}

    async def start_api(self) -> None:
        self.procs.spawn("api", *CLI, "serve", "--migrate", "--port", self.api.rsplit(":", 1)[1])
        await self.procs.wait_until("api", lambda: self.get(f"{self.api}/healthz"), NOT_YET)
        made = await asyncio.create_subprocess_exec(
            *CLI, "create-workspace", "bench", cwd=ROOT, env=self.procs.env, stdout=subprocess.PIPE
        )
        self.key = (await made.communicate())[0].decode().strip().splitlines()[-1]

    # ---------------------------------------------------------------- throughput

    async def throughput(self) -> bool:
        n, c, seconds = self.args.webhooks, self.args.connections, self.args.seconds
        _, pk = await self.create(n)
        assert self.db is not None
        # as if the campaign had been sent: every message SENT with a provider id
        await self.db.execute(
            "UPDATE message SET status = 'SENT', provider_message_id = 'wamid.B' || id, sent_at = now() "
            "WHERE campaign_id = $1",
            pk,
        )
        await self.db.execute("UPDATE campaign SET status = 'COMPLETED', pending = 0, sent = total WHERE id = $1", pk)
        ids = [r["id"] for r in await self.db.fetch("SELECT id FROM message WHERE campaign_id = $1 ORDER BY id", pk)]
        bodies = [status_body(pk, mid, "delivered") for mid in ids]
        api_pid, url = self.procs.procs["api"].pid, f"{self.api}/webhooks/whatsapp"
        loader = self.args.loader
        print(
            f"throughput: loader {loader}, {c} keep-alive connections, one status per POST, "
            + (f"{seconds:g} s per server over {n:,} distinct bodies" if loader == "wrk" else f"{n:,} POSTs")
        )
        cpu0, started = ticks(api_pid), time.perf_counter()
        if loader == "wrk":
            rate, p50, p99, bad, posted = await wrk(url, bodies, c, seconds)
        else:
            rate, times, bad = await flood(url, bodies, c)
            p50, p99 = quantiles(times)
            posted = n
        elapsed = time.perf_counter() - started
        api_cpu = (ticks(api_pid) - cpu0) / os.sysconf("SC_CLK_TCK") / elapsed * 100
        posted = min(n, posted)
        answered_at = time.perf_counter()
        while (await self.counters(pk))["delivered"] < posted:
            if time.perf_counter() - answered_at > 120:
                raise RuntimeError(f"receipts not applied: {await self.counters(pk)}")
            await asyncio.sleep(0.05)
        applied_after = time.perf_counter() - answered_at
        print(
            f"  service: {rate:,.0f} webhooks/s, {bad} non-2xx; answers p50 {p50 * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms; API process CPU {api_cpu:.0f}% of a core (receiving and applying)"
        )
        print(f"  every receipt answered 200 was applied {applied_after:.2f} s after the last answer")
        port = free_port()
        self.procs.spawn("bare", sys.executable, HERE, "--bare", str(port))
        await self.procs.listening("bare", port)
        bare_url = f"http://127.0.0.1:{port}/webhooks/whatsapp"
        if loader == "wrk":
            bare_rate, b50, b99, bare_bad, _ = await wrk(bare_url, bodies, c, seconds)
        else:
            bare_rate, bare_times, bare_bad = await flood(bare_url, bodies, c)
            b50, b99 = quantiles(bare_times)
        self.procs.stop("bare")
        print(
            f"  bare:    {bare_rate:,.0f} webhooks/s, {bare_bad} non-2xx; answers p50 {b50 * 1000:.1f} ms, "
            f"p99 {b99 * 1000:.1f} ms"
        )
        ratio = rate / bare_rate
        ok = ratio >= MIN_RATIO and bad == 0
        print(
            f"throughput: service {rate:,.0f}/s vs bare {bare_rate:,.0f}/s: ratio {ratio:.2f} "
            f"(target >= {MIN_RATIO:.2f}) {VERDICT[ok]}; median answer {p50 * 1000:.1f} ms (Meta: < 250 ms) "
            f"{VERDICT[p50 < 0.25]}"
        )
        return ok and p50 < 0.25

    # ---------------------------------------------------------------- receipt lag

    async def lag(self, sim_port: int) -> bool:
        args = self.args
        sim = f"http://127.0.0.1:{sim_port}"
        self.procs.spawn(
            "simulator",
            *CLI,
            "simulator",
            "--port",
            sim.rsplit(":", 1)[1],
            "--latency-ms",
            str(args.latency_ms),
            "--webhook-url",
            f"{self.api}/webhooks/whatsapp",
        )
        await self.procs.wait_until("simulator", lambda: self.get(f"{sim}/_simulator/health"), NOT_YET)
        health = "campaigns:queue:health-check"
        client = redis.Redis.from_url(args.redis_url)
        client.delete(health)
        self.procs.spawn("worker", *CLI, "worker")
        await self.procs.wait_until("worker", lambda: asyncio.to_thread(client.exists, health), NOT_YET)
        gid, pk = await self.create(args.messages)
        pids = {name: proc.pid for name, proc in self.procs.procs.items()} | {"bench": os.getpid()}
        database = args.database_url.rsplit("/", 1)[1]
        cpu0 = cpu_snapshot(pids, database)
        samples: list[tuple[float, int, int, int, int]] = []  # t, posted delivered/read, counted delivered/read
        query = "mutation($id: ID!) { sendCampaignNow(id: $id) { campaign { status } } }"
        started = time.perf_counter()
        await self.gql(query, id=gid)
        done_at = None
        total = args.messages
        while True:
            t = time.perf_counter() - started
            ledger = await self.get(f"{sim}/_simulator/ledger")
            kinds = ledger["webhooks"]["sent_by_kind"]
            counters = await self.counters(pk)
            samples.append((t, kinds["delivered"], kinds["read"], counters["delivered"], counters["read"]))
            if done_at is None and counters["status"] == "COMPLETED":
                done_at = t
            if counters["read"] >= total and counters["delivered"] >= total:
                break
            if t > 600:
                raise RuntimeError(f"receipts did not settle: {counters} {kinds}")
            await asyncio.sleep(0.1)
        elapsed = samples[-1][0]
        cpu = cpu_report(cpu0, cpu_snapshot(pids, database), elapsed)
        send_rate = total / (done_at or elapsed)
        at = [m["at"] for m in (await self.get(f"{sim}/_simulator/ledger/messages?campaign={pk}"))["messages"]]
        steady = (len(at) - 1) / ((max(at) - min(at)) or 1)
        answers = ledger["webhooks"]["answers"]
        ok = True
        for label, posted_at, counted_at in (("delivered", 1, 3), ("read", 2, 4)):
            lags = receipt_lags(samples, posted_at, counted_at, total)
            p50, p99 = statistics.median(lags), sorted(lags)[int(0.99 * (len(lags) - 1))]
            good = p99 < MAX_LAG_P99
            ok = ok and good
            print(
                f"lag ({label}): posted -> counted p50 {p50:.2f} s, p99 {p99:.2f} s "
                f"(target p99 < {MAX_LAG_P99:.0f} s: {p99 / MAX_LAG_P99:.2f} of it) {VERDICT[good]}"
            )
        print(
            f"  while ONE worker sent {total:,} messages: {send_rate:,.0f} msg/s from sendCampaignNow to COMPLETED, "
            f"{steady:,.0f} msg/s first to last acceptance (its limit: {args.rate}/s); "
            f"{ledger['webhooks']['statuses_sent']:,} statuses in {ledger['webhooks']['sent']:,} POSTs, answered "
            f"p50 {answers['p50_ms']} ms, p99 {answers['p99_ms']} ms"
        )
        print(cpu)
        return ok


def receipt_lags(samples: list[tuple[float, int, int, int, int]], posted: int, counted: int, total: int) -> list[float]:
    """For k = 1..total (every 50th): time the counter reached k minus time k were posted."""
    times = [s[0] for s in samples]
    posted_series = [s[posted] for s in samples]
    counted_series = [s[counted] for s in samples]
    lags = []
    for k in range(1, total + 1, 50):
        i = bisect.bisect_left(posted_series, k)
        j = bisect.bisect_left(counted_series, k)
        if i < len(times) and j < len(times):
            lags.append(max(0.0, times[j] - times[i]))
    return lags


async def main(args: argparse.Namespace) -> int:
    db = await recreate_database(args.database_url)
    redis.Redis.from_url(args.redis_url).flushdb()
    logs = Path(tempfile.mkdtemp(prefix="campaigns-bench-receipts-"))
    env = service_env(
        args.database_url,
        args.redis_url,
        WHATSAPP_RATE_LIMIT=str(args.rate),
        WORKER_CONCURRENCY=str(args.concurrency),
        **EVERY_STATUS_IN_ORDER,
        SIMULATOR_SENT_DELAY_MS="50-200",
        SIMULATOR_DELIVERED_DELAY_MS="200-1000",
        SIMULATOR_READ_DELAY_MS="500-2000",
        SIMULATOR_WEBHOOK_CONCURRENCY=str(args.connections),
    )
    print(f"code {args.revision}; database {db} (recreated), redis {args.redis_url} (flushed); logs in {logs}")
    procs, results = Procs(env, logs), list[bool]()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            bench = Bench(args, procs, http)
            env["WHATSAPP_API_BASE"] = "http://127.0.0.1:1"  # throughput phase: nothing is sent
            await bench.start_api()
            bench.db = await asyncpg.connect(args.database_url.replace("postgres://", "postgresql://", 1))
            results.append(await bench.throughput())
            if args.messages:
                sim_port = free_port()
                env["WHATSAPP_API_BASE"] = f"http://127.0.0.1:{sim_port}"
                procs.stop("api")
                await bench.start_api()
                results.append(await bench.lag(sim_port))
            await bench.db.close()
    finally:
        procs.stop()
    print(f"overall: {VERDICT[all(results)]}")
    return 1 if args.strict and not all(results) else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webhooks", type=int, default=60_000, help="throughput phase: distinct bodies (POSTs)")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections posting at once")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput phase with wrk: seconds per server")
    parser.add_argument(
        "--loader",
        choices=("wrk", "python"),
        default="wrk" if shutil.which("wrk") else "python",
        help="wrk (C; `apt-get install wrk`) costs the machine far less per request than the aiohttp loader",
    )
    parser.add_argument("--messages", type=int, default=20_000, help="lag phase: campaign size (0 skips it)")
    parser.add_argument("--rate", type=int, default=1000, help="lag phase: the worker's WHATSAPP_RATE_LIMIT")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=400,
        help="lag phase: WORKER_CONCURRENCY; the simulator shares these cores and answers slower while it posts "
        "webhooks, so more calls in flight keep the rate",
    )
    parser.add_argument("--latency-ms", type=float, default=50.0, help="lag phase: simulator answer latency")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/campaigns_bench_receipts")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11", help="this db is flushed")
    parser.add_argument("--strict", action="store_true", help="exit 1 on FAIL")
    return parser.parse_args(namespace=argparse.Namespace(revision=revision()))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--bare":
        bare_app()
        sys.exit(0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so the subprocesses are stopped
    sys.exit(asyncio.run(main(parse_args())))
