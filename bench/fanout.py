"""Live progress fan-out: N `campaignProgress` subscribers on ONE API process, against a bare broadcast.

    python bench/fanout.py [--sizes 1000,5000] [--window 20] [--clients 2] [--rate 10] [--strict]

Starts its own redis-server, recreates its PostgreSQL database, then a setup `cli serve --migrate`
(creates the campaigns; not measured), `cli simulator --latency-ms 20` WITHOUT webhooks (receipts
would load the API), ONE `cli worker` (WHATSAPP_RATE_LIMIT=--send-rate) and --clients client
processes (spawned once; each socket a lean asyncio Protocol on uvloop speaking graphql-transport-ws:
connection_init, subscribe, first answer). Per source, size N and server, a FRESH server process:
`api` = `cli serve` as deployed (one uvicorn process), `bare` = bare_app below under uvicorn with the
same WebSocket options, one task sending each raw Redis message to every socket of its campaign.
N sockets connect, a --window is measured, the sockets close, the server stops.
  live:   a campaign of --recipients sends for real (the worker's ProgressPublisher, ~4 events/s);
          paused while the sockets connect, resumed before the window.
  direct: worker and simulator stopped; this script publishes ProgressEvent JSON (as ProgressPublisher,
          `at` = time.time()) on a DRAFT campaign's channel, --rate/s: Redis -> hub -> strawberry -> socket.
Latency: receipt - the payload's `at`. Memory: the server's VmRSS after N subscribed - before, / N.
CPU: % of one core per process over the window; `other`: the rest of the machine's busy time.
Targets per source and size: api/bare updates per published event >= 0.50; at the largest size api p99
< 500 ms, api/bare memory per connection <= 1.3x and api/bare time to subscribe every socket <= 2x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
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
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from benchkit import ROOT, Procs, free_port, gql, recreate_database, revision, service_env, ticks
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

BENCH = Path(__file__).resolve().parent
TICK, MAX_P99, MIN_RATIO, PROTOCOL = os.sysconf("SC_CLK_TCK"), 500.0, 0.50, "graphql-transport-ws"
MAX_MEMORY, MAX_SUBSCRIBE = 1.3, 2.0  # api/bare at the largest size: KiB per connection, time to subscribe all
VERDICT = {True: "PASS", False: "FAIL"}
QUERY = """subscription Watch($id: ID!) { campaignProgress(id: $id) { campaignId status sendRate at
  stats { total pending sent delivered read failed cancelled progress deliveryRate readRate failureRate } } }"""
UVICORN = ["--ws-per-message-deflate", "false", "--ws-ping-interval", "20", "--ws-ping-timeout", "20"]  # as cli.py
UVICORN += ["--log-level", "warning"]  # as LOG_LEVEL=WARNING for the API
SERVERS = {  # each measured on a fresh process; the API exactly as deployed
    "api": [sys.executable, "-m", "cli", "serve", "--migrate"],
    "bare": [sys.executable, "-m", "uvicorn", "fanout:bare_app", "--factory", "--app-dir", str(BENCH), *UVICORN],
}
SIMULATOR = [sys.executable, "-m", "cli", "simulator", "--latency-ms", "20"]


def bare_app() -> Starlette:
    """The baseline: one Redis subscription; each raw message to every socket of its campaign."""
    from domain.ids import expect_id
    from runtime.keys import PROGRESS_PATTERN

    rooms: dict[int, set[WebSocket]] = {}

    async def pump() -> None:
        pubsub = Redis.from_url(os.environ["REDIS_URL"]).pubsub(ignore_subscribe_messages=True)
        await pubsub.psubscribe(PROGRESS_PATTERN)
        async for message in pubsub.listen():
            text = message["data"].decode()
            for ws in list(rooms.get(int(message["channel"].rsplit(b":", 1)[1]), ())):
                try:
                    await ws.send_text(text)
                except Exception:  # gone: its endpoint removes it
                    pass

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept(subprotocol=PROTOCOL)
        await ws.receive_text()  # connection_init
        await ws.send_text('{"type": "connection_ack"}')
        subscribe = json.loads(await ws.receive_text())
        room = rooms.setdefault(expect_id(subscribe["payload"]["variables"]["id"], "Campaign"), set())
        await ws.send_text(json.dumps({"id": subscribe["id"], "type": "next", "payload": {"data": None}}))
        room.add(ws)
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            room.discard(ws)

    async def lifespan(_app: Starlette) -> Any:
        task = asyncio.create_task(pump())
        yield
        task.cancel()

    return Starlette(routes=[WebSocketRoute("/graphql", endpoint)], lifespan=lifespan)


# ----------------------------------------------------------------------------- client processes

WINDOW, LATENCIES, ERRORS = [math.inf, math.inf], array("d"), [0]  # of the client process's current phase


def frame(payload: bytes, opcode: int = 1) -> bytes:
    """A client frame, masked with the all-zero key (XOR is then the identity)."""
    size = bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0xFE]) + len(payload).to_bytes(2)
    return bytes([0x80 | opcode]) + size + b"\0\0\0\0" + payload


class Subscriber(asyncio.Protocol):
    """One socket: upgrade, connection_init, subscribe, first answer; then each message in the window."""

    def __init__(self, hello: list[bytes]) -> None:
        self.hello, self.buf, self.count = hello, bytearray(), 0
        self.transport: Any = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.hello.pop(0))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before the first answer"))

    def data_received(self, data: bytes) -> None:
        t, buf = time.time(), self.buf
        buf += data
        if len(self.hello) == 2:  # the HTTP answer
            if (end := buf.find(b"\r\n\r\n")) < 0 or not buf.startswith(b"HTTP/1.1 101"):
                if end >= 0:
                    self.transport.close()
                return
            del buf[: end + 4]
            self.transport.write(self.hello.pop(0))
        while len(buf) >= 2:
            size, head = buf[1] & 0x7F, 2
            if size >= 126:
                head = 4 if size == 126 else 10
                size = int.from_bytes(buf[2:head]) if len(buf) >= head else 1 << 62
            if len(buf) < head + size:
                return
            opcode, payload = buf[0] & 0x0F, bytes(buf[head : head + size])
            del buf[: head + size]
            if opcode == 9:
                self.transport.write(frame(payload, 0xA))  # pong
            elif opcode == 1:
                self.message(t, payload)

    def message(self, t: float, payload: bytes) -> None:
        if self.hello:  # connection_ack: subscribe
            self.transport.write(self.hello.pop(0)) if b'"connection_ack"' in payload else self.transport.close()
        elif not self.ready.done():  # the first answer
            self.ready.set_result(None) if b'"next"' in payload else self.transport.close()
        elif WINDOW[0] <= t < WINDOW[1]:  # no json.loads: the client's cost per message stays low
            start = payload.find(b'"at":') + 5
            if start == 4 or b'"errors"' in payload:
                ERRORS[0] += 1
                return
            value = payload[start : min(i for i in (payload.find(b",", start), payload.find(b"}", start)) if i >= 0)]
            value = value.strip(b' "')  # a float (bare) or an ISO date-time (GraphQL)
            at = datetime.fromisoformat(value.decode()).timestamp() if b"T" in value else float(value)
            LATENCIES.append(t - at)
            self.count += 1


def client_main(pipe: Connection) -> None:
    import uvloop  # as uvicorn's servers (uvicorn[standard])

    async def serve() -> None:
        while (job := await asyncio.to_thread(pipe.recv)) is not None:
            pipe.send(await client_phase(pipe, *job))

    uvloop.run(serve())


async def client_phase(pipe: Connection, port: int, key: str, gid: str, n: int) -> tuple[bytes, list[int], int]:
    """Subscribe n sockets, send (connected, failed, seconds); take the window; return (latencies,
    messages per subscriber, errors) inside it."""
    WINDOW[:], LATENCIES[:], ERRORS[0], gate, subs = [math.inf] * 2, array("d"), 0, asyncio.Semaphore(64), []
    upgrade = f"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    upgrade += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: "
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
    subscribe = {"id": "1", "type": "subscribe", "payload": {"query": QUERY, "variables": {"id": gid}}}
    hello = [f"{upgrade}{PROTOCOL}\r\n\r\n".encode(), *(frame(json.dumps(m).encode()) for m in (init, subscribe))]

    async def one() -> None:
        async with gate:
            loop = asyncio.get_running_loop()
            subs.append((await loop.create_connection(lambda: Subscriber(list(hello)), "127.0.0.1", port))[1])
            await asyncio.wait_for(asyncio.shield(subs[-1].ready), 60)

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    failed = sum(isinstance(r, BaseException) for r in outcomes)
    pipe.send((n - failed, failed, time.perf_counter() - started))
    WINDOW[:] = await asyncio.to_thread(pipe.recv)
    await asyncio.sleep(WINDOW[1] - time.time() + 0.3)
    for sub in subs:
        sub.transport.write(frame(b"\x03\xe8", 8))  # close 1000
        sub.transport.close()
    return LATENCIES.tobytes(), [s.count for s in subs if s.ready.done() and not s.ready.exception()], ERRORS[0]


# ------------------------------------------------------------------------ processes, CPU, memory


def rss_kib(pid: int) -> int:
    return int(next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x[:6] == "VmRSS:").split()[1])


def cpu(pids: dict[str, int], database: str) -> dict[str, int]:
    """CPU ticks of each process and of `database`'s PostgreSQL backends; the machine's busy ticks."""
    backends = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and f" {database} " in (entry / "cmdline").read_text().replace("\0", " "):
                backends.append(int(entry.name))
        except OSError:
            pass
    stat = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(stat) - stat[3] - stat[4]  # all but idle and iowait, over every CPU
    return {k: ticks(p) for k, p in pids.items()} | {"postgres": sum(map(ticks, backends)), "machine": busy}


async def recv(pipe: Connection, seconds: float) -> Any:
    """A client process's answer, without blocking the loop (nor leaving a thread to wait for)."""
    deadline = time.monotonic() + seconds
    while not pipe.poll():
        if time.monotonic() > deadline:
            raise RuntimeError(f"a client process did not answer within {seconds:g} s")
        await asyncio.sleep(0.05)
    return pipe.recv()


class Run:
    def __init__(self, args: argparse.Namespace, procs: Procs, http: aiohttp.ClientSession, redis: Redis) -> None:
        self.args, self.procs, self.http, self.redis, self.key, self.started = args, procs, http, redis, "", False
        self.pids, self.ports, self.pipes = {"bench": os.getpid()}, dict[str, int](), list[Connection]()

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['setup-api']}"

    async def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        return await gql(self.http, self.api, self.key, query, **variables)

    async def create(self, n: int) -> tuple[str, int]:
        from domain.ids import expect_id

        query = "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { id } } }"
        given = {"name": "fanout", "body": "Hello {{name}}", "failureThreshold": None}
        gid = str((await self.gql(query, input=given))["createCampaign"]["campaign"]["id"])
        rows = "phone,name\n" + "".join(f"+1415{3000000 + i:07d},User {i}\n" for i in range(n))
        url, headers = f"{self.api}/campaigns/{gid}/recipients", {"Content-Type": "text/csv"}
        async with self.http.post(url, data=rows, headers=headers | {"Authorization": f"Bearer {self.key}"}) as r:
            if (await r.json()).get("added") != n:
                raise RuntimeError(f"the CSV import of {n} rows failed")
        return gid, expect_id(gid, "Campaign")

    async def publish(self, pk: int, until: float) -> None:
        """ProgressEvent JSON as ProgressPublisher publishes it, --rate a second, `at` = publish time."""
        from runtime.keys import progress_channel

        due, sent, total = time.monotonic(), 0, 10**6
        while time.time() < until:
            sent += 1
            stats = {"total": total, "pending": total - sent, "sent": sent, "delivered": 0, "read": 0, "replied": 0}
            event = {"type": "progress", "campaign_id": pk, "workspace_id": 1, "status": "PROCESSING", "version": 2}
            event |= {"stats": stats | {"failed": 0, "cancelled": 0}, "at": time.time()}
            await self.redis.publish(progress_channel(pk), json.dumps(event))
            due += 1 / self.args.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def act(self, action: str, gid: str) -> None:
        query = f"mutation($id: ID!) {{ {action}(id: $id) {{ campaign {{ status }} userErrors {{ message }} }} }}"
        if errors := (await self.gql(query, id=gid))[action]["userErrors"]:
            raise RuntimeError(f"{action}: {errors}")

    async def measure(self, source: str, server: str, gid: str, pk: int, n: int) -> tuple[float, float, float, float]:
        """One window on a fresh `server` process: prints its figures; returns (updates delivered per
        event published, p99 latency in ms, KiB per connection, seconds to subscribe every socket). The
        live campaign is paused while the sockets connect."""
        name, port, window, pipes = f"{server}-{source}-{n}", free_port(), self.args.window, self.pipes
        pid = self.pids[server] = self.procs.spawn(name, *SERVERS[server], "--port", str(port))
        await self.procs.listening(name, port)
        await asyncio.sleep(1)
        rss0, seen, pubsub = rss_kib(pid), list[float](), self.redis.pubsub(ignore_subscribe_messages=True)
        for i, pipe in enumerate(pipes):
            pipe.send((port, self.key, gid, n // len(pipes) + (i < n % len(pipes))))
        ready = [await recv(p, 600) for p in pipes]
        await asyncio.sleep(2)
        connected, rss1, subscribed = sum(r[0] for r in ready), rss_kib(pid), max(r[2] for r in ready)

        async def count() -> None:
            await pubsub.subscribe(f"campaigns:progress:{pk}")
            async for _ in pubsub.listen():
                seen.append(time.time())

        tasks = [asyncio.create_task(count())]
        if source == "live":  # the campaign runs again: measure once its events flow
            await self.act("resumeCampaign" if self.started else "sendCampaignNow", gid)
            self.started = True
            deadline = time.monotonic() + 30
            while len(seen) < 2 and time.monotonic() < deadline:  # noqa: ASYNC110 - events from another process
                await asyncio.sleep(0.1)
        t0 = time.time() + 1.0
        for pipe in pipes:
            pipe.send((t0, t0 + window))
        tasks += [asyncio.create_task(self.publish(pk, t0 + window + 0.2))] if source == "direct" else []
        await asyncio.sleep(t0 - time.time())
        before = cpu(self.pids, self.args.db)
        await asyncio.sleep(t0 + window - time.time())
        used = {k: (v - before[k]) / TICK / window * 100 for k, v in cpu(self.pids, self.args.db).items()}
        results = [await recv(p, 120) for p in pipes]
        if source == "live":
            await self.act("pauseCampaign", gid)
        for task in tasks:
            task.cancel()
        await pubsub.aclose()
        await asyncio.sleep(2)  # the server drops the closed sockets (and logs what it logs)
        self.procs.stop(name)
        del self.pids[server]
        lat = sorted(x * 1000 for r in results for x in array("d", r[0]))
        counts, errors = [c for r in results for c in r[1]] or [0], sum(r[2] for r in results)
        rate, published = sum(counts) / window, sum(t0 <= t < t0 + window for t in seen) / window
        p50, p99 = (lat[int(q * (len(lat) - 1))] if lat else math.inf for q in (0.50, 0.99))
        kib = (rss1 - rss0) / max(connected, 1)
        print(
            f"{source} {n:,} {server}: {connected:,}/{n:,} subscribed in {subscribed:.1f} s, "
            f"{kib:.1f} KiB/connection (VmRSS {rss0 / 1024:.0f} -> {rss1 / 1024:.0f} "
            f"MiB); published {published:.1f} events/s; delivered {rate:,.0f} updates/s = {rate / n:.2f}/client "
            f"(min {min(counts) / window:.2f}); latency p50 {p50:,.0f} ms p99 {p99:,.0f} ms; client errors {errors}; "
            f"server logged {self.procs.errors(name)} ERROR lines"
        )
        busy = used.pop("machine")
        other, mine = busy - sum(used.values()), ", ".join(f"{k} {v:.0f}%" for k, v in used.items() if v >= 0.5)
        warn = "  <- other processes load this machine" if other > 25 else ""
        print(f"  CPU (% of one core): {mine}; other {other:.0f}%; machine {busy:.0f}%{warn}", flush=True)
        return rate / published if published else 0.0, p99, kib, subscribed


async def bench(run: Run, sizes: list[int]) -> list[bool]:
    args, verdicts = run.args, list[bool]()
    live_gid, live_pk = await run.create(args.recipients if "live" in args.sources else 1)
    direct_gid, direct_pk = await run.create(10)
    print(f"live campaign {live_pk}: {args.recipients:,} recipients, sent (sendCampaignNow/resumeCampaign) during")
    print("the live windows only: paused (pauseCampaign) while the sockets of the next window connect")
    for source, gid, pk in (("live", live_gid, live_pk), ("direct", direct_gid, direct_pk)):
        if source not in args.sources:
            continue
        if source == "direct" and "worker" in run.pids:
            run.procs.stop("worker", "simulator")  # the fan-out path alone
            del run.pids["worker"], run.pids["simulator"]
        for n in sizes:
            (api, p99, kib, took), (bare, _, bare_kib, bare_took) = [
                await run.measure(source, s, gid, pk, n) for s in ("api", "bare")
            ]
            verdicts.append(bare > 0 and api / bare >= MIN_RATIO)  # per published event: the live rate drifts
            line = f"{source} {n:,}: api/bare updates per event published {api / (bare or 1):.2f} "
            line += f"(target >= {MIN_RATIO:.2f}) "
            line += VERDICT[verdicts[-1]]
            if n == max(sizes):
                verdicts.append(p99 < MAX_P99)
                line += f"; api p99 {p99:,.0f} ms (target < {MAX_P99:.0f} ms) {VERDICT[verdicts[-1]]}"
                memory = kib / bare_kib if bare_kib > 0 else math.inf
                subscribing = took / bare_took if bare_took > 0 else math.inf
                verdicts += [memory <= MAX_MEMORY, subscribing <= MAX_SUBSCRIBE]
                line += f"; KiB/connection api/bare {memory:.2f}x (target <= {MAX_MEMORY}x) {VERDICT[verdicts[-2]]}"
                line += f"; subscribing api/bare {subscribing:.2f}x (target <= {MAX_SUBSCRIBE:g}x) "
                line += VERDICT[verdicts[-1]]
            print(line, flush=True)
        if source == "live":
            query = "query($id: ID!) { campaign(id: $id) { status stats { sent } } }"
            state = (await run.gql(query, id=live_gid))["campaign"]
            print(f"live campaign after its windows: {state}", "" if state["status"] == "PAUSED" else "ENDED EARLY")
    return verdicts


async def start(run: Run, env: dict[str, str]) -> None:
    """Redis, the API that sets up the campaigns (not measured), the simulator, the worker."""
    procs, ports, python = run.procs, run.ports, sys.executable
    redis = [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    for name, argv in (("redis", redis), ("setup-api", SERVERS["api"]), ("simulator", SIMULATOR)):
        run.pids[name] = procs.spawn(name, *argv, "--port", str(ports[name]))
        await procs.listening(name, ports[name])
    argv = [python, "-m", "cli", "create-workspace", "fanout"]
    made = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, env=env, stdout=subprocess.PIPE)
    run.key = (await made.communicate())[0].decode().strip().splitlines()[-1]
    run.pids["worker"] = procs.spawn("worker", python, "-m", "cli", "worker")


async def main(args: argparse.Namespace) -> int:
    sizes = [int(x) for x in args.sizes.split(",")]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by every subprocess
    if hard != resource.RLIM_INFINITY and hard < max(sizes) + 1000:
        raise SystemExit(f"the fd limit {hard} is too low for {max(sizes):,} sockets in one process")
    args.db = await recreate_database(args.database_url)
    logs = Path(tempfile.mkdtemp(prefix="campaigns-bench-fanout-"))
    ports = {k: free_port() for k in ("redis", "setup-api", "simulator")}
    env = service_env(
        args.database_url,
        f"redis://127.0.0.1:{ports['redis']}/0",
        WHATSAPP_API_BASE=f"http://127.0.0.1:{ports['simulator']}",
        WHATSAPP_RATE_LIMIT=str(args.send_rate),
    )
    print(f"code {revision()}; fd limit {hard} per process; database {args.db} (recreated); logs in {logs}")
    print(f"{args.clients} client processes; window {args.window:g} s; direct {args.rate:g} events/s; own redis;")
    print(f"simulator 20 ms WITHOUT webhooks; ONE worker, WHATSAPP_RATE_LIMIT={args.send_rate}")
    procs, clients, context = Procs(env, logs), list[Any](), mp.get_context("spawn")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
            run = Run(args, procs, http, Redis.from_url(env["REDIS_URL"]))
            run.ports = ports
            await start(run, env)
            for i in range(args.clients):
                mine, theirs = context.Pipe()
                clients.append(context.Process(target=client_main, args=(theirs,), daemon=True))
                clients[-1].start()
                run.pipes.append(mine)
                run.pids[f"client{i}"] = clients[-1].pid
            verdicts = await asyncio.wait_for(bench(run, sizes), args.timeout)
            await run.redis.aclose()
    finally:
        for client in clients:
            client.kill()
        procs.stop()
    print(f"overall: {VERDICT[all(verdicts)]}")
    return 1 if args.strict and not all(verdicts) else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000", help="subscriber counts, comma-separated")
    parser.add_argument("--window", type=float, default=20.0, help="measured seconds per source, size and server")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--rate", type=float, default=10.0, help="events/s of the direct source")
    parser.add_argument("--sources", default="live,direct", help="live, direct or both")
    parser.add_argument("--recipients", type=int, default=300_000, help="of the live campaign")
    parser.add_argument("--send-rate", type=int, default=1000, help="the worker's WHATSAPP_RATE_LIMIT")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/campaigns_bench_fanout")
    parser.add_argument("--timeout", type=float, default=1500.0, help="seconds before the run gives up")
    parser.add_argument("--strict", action="store_true", help="exit 1 on FAIL")
    return parser.parse_args()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so the subprocesses are stopped
    sys.exit(asyncio.run(main(parse_args())))
