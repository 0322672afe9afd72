"""GraphQL `campaigns(first: 20)` requests/s over HTTP, against two baselines.

    python bench/graphql_query.py [--duration 10] [--connections 32] [--rounds 3] [--database-url URL] [--strict]

Seeds a workspace with 50 campaigns (SQLite in a temp dir unless --database-url), then
serves each in its own uvicorn subprocess (one process, log level warning, no access log)
on a loopback port:
  plain:   a tiny Starlette app answering POST / with a small JSON dict;
  floor:   a bare Strawberry schema of the query's shape (the types and fields QUERY
           selects) over 50 in-memory rows, served by Strawberry's ASGI app: what the
           stack itself costs, with no database, auth, middleware or limits;
  graphql: `server:create_app --factory` with DATABASE_URL and REDIS_URL set.
Each gets the same POST (JSON body, bearer key), a warm-up, then timed runs from `wrk`
(or, without wrk, an aiohttp client with the same number of connections). plain runs
alone first; then floor and graphql run side by side (both processes up, the one not loaded
stopped by SIGSTOP) and take turns for --rounds timed runs each, floor first: this machine's speed
drifts by 20-40% over minutes, so each graphql run is compared with the floor run just
before it, and the verdict takes the median of those --rounds ratios.
Targets: graphql requests/s >= 0.30 x plain, and >= 0.70 x floor. Also printed: each
server's requests per CPU-second of its process and the ratios of those, steadier when
other processes share the machine (bench/README.md has the runs).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from enum import Enum
from pathlib import Path

import strawberry
from benchkit import TICK, cpu_report, cpu_snapshot, free_port, revision, ticks
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TARGET = 0.30
FLOOR_TARGET = 0.70
CAMPAIGNS = 50
QUERY = (
    "query { campaigns(first: 20) { totalCount edges { node "
    "{ id name status stats { total sent } allowedActions } } } }"
)
BENCH_DIR = Path(__file__).resolve().parent


def plain_app() -> Starlette:
    """The baseline: the same request in, a small JSON dict out (served as a factory)."""

    async def endpoint(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"data": {"ok": True, "service": "campaigns", "version": 1}})

    return Starlette(routes=[Route("/", endpoint, methods=["GET", "POST"])])


# The service's enums, member for member (Strawberry serializes an enum member by
# scanning its type's values, so their sizes are part of the cost).
@strawberry.enum(name="CampaignStatus")
class FloorStatus(Enum):
    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


@strawberry.enum(name="CampaignAction")
class FloorAction(Enum):
    EDIT = "EDIT"
    ADD_RECIPIENTS = "ADD_RECIPIENTS"
    REMOVE_RECIPIENTS = "REMOVE_RECIPIENTS"
    DELETE = "DELETE"
    SCHEDULE = "SCHEDULE"
    SEND_NOW = "SEND_NOW"
    RESCHEDULE = "RESCHEDULE"
    UNSCHEDULE = "UNSCHEDULE"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    CANCEL = "CANCEL"
    RETRY_FAILED = "RETRY_FAILED"
    RETRY = "RETRY"
    DUPLICATE = "DUPLICATE"


#: what the floor's allowedActions resolver looks up: a DRAFT's actions, as the service's
#: lifecycle table gives them (every seeded campaign is a DRAFT)
FLOOR_ACTIONS = {
    FloorStatus.DRAFT: [
        FloorAction[a]
        for a in ("EDIT", "ADD_RECIPIENTS", "REMOVE_RECIPIENTS", "DELETE", "SCHEDULE", "SEND_NOW", "DUPLICATE")
    ]
}


@strawberry.type(name="CampaignStats")
class FloorStats:
    total: int
    sent: int


@strawberry.type(name="Campaign")
class FloorCampaign:
    id: strawberry.ID
    name: str
    status: FloorStatus
    stats: FloorStats

    @strawberry.field
    def allowed_actions(self) -> list[FloorAction]:
        return FLOOR_ACTIONS[self.status]


@strawberry.type(name="CampaignEdge")
class FloorEdge:
    node: FloorCampaign
    cursor: str


@strawberry.type(name="CampaignConnection")
class FloorConnection:
    edges: list[FloorEdge]
    total_count: int


#: the floor's rows, newest first, with the seeded campaigns' names and counters
FLOOR_ROWS = [
    FloorCampaign(
        id=strawberry.ID(base64.urlsafe_b64encode(f"Campaign:{i + 1}".encode()).decode().rstrip("=")),
        name=f"Campaign {i}",
        status=FloorStatus.DRAFT,
        stats=FloorStats(total=1000 + i, sent=11 * i),
    )
    for i in reversed(range(CAMPAIGNS))
]


@strawberry.type(name="Query")
class FloorQuery:
    @strawberry.field
    async def campaigns(self, first: int = 20) -> FloorConnection:
        # async, as a resolver that reads a database is; the rows are in memory
        rows = FLOOR_ROWS[:first]
        edges = [FloorEdge(node=row, cursor=row.id) for row in rows]
        return FloorConnection(edges=edges, total_count=len(FLOOR_ROWS))


def floor_app() -> object:
    """The floor: a bare Strawberry schema of QUERY's shape over in-memory rows, on
    Strawberry's own ASGI app, with Strawberry's parser and validation caches (as
    GraphQL servers cache documents: without them it parses and validates every request
    and does about half the rate); no middleware, auth, limits or database. Served as
    a factory."""
    from strawberry.asgi import GraphQL
    from strawberry.extensions import ParserCache, ValidationCache

    extensions = [lambda: ParserCache(maxsize=100), lambda: ValidationCache(maxsize=100)]
    return GraphQL(strawberry.Schema(query=FloorQuery, extensions=extensions), graphql_ide=None)


async def seed(database_url: str) -> str:
    """Migrate, create a workspace with CAMPAIGNS campaigns; return its API key."""
    from models import Campaign
    from runtime.database import migrate, orm
    from services.auth import Principal, create_workspace
    from services.campaigns import create_campaign
    from settings import Settings

    settings = Settings(database_url=database_url)
    await migrate(settings)
    async with orm(settings):
        workspace, key = await create_workspace("bench")
        principal = Principal(workspace.id, "bench")
        for i in range(CAMPAIGNS):
            campaign = await create_campaign(principal, {"name": f"Campaign {i}", "body": "Hello {{name}}"})
            await Campaign.filter(id=campaign.id).update(total=1000 + i, pending=1000 - 10 * i, sent=11 * i)
    return key


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status), response.read()


def start_server(app: str, extra: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log", *extra]
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, env=env, stderr=stderr)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{app} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{app} did not start within 30 s")


def stop(process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    text = log.read_text(errors="replace")
    errors = [line for line in text.splitlines() if '"level": "ERROR"' in line or "Traceback" in line]
    if errors:
        kinds = sorted(set(re.findall(r"\\n(\w+(?:\.\w+)*(?:Error|Exception|Disconnect)\w*)", text)))
        print(f"  {name} server logged {len(errors)} error(s): {', '.join(kinds) or errors[0][:200]}")


def run_wrk(
    url: str, body: bytes, headers: dict[str, str], args: argparse.Namespace, seconds: float
) -> tuple[float, str]:
    lua = ['wrk.method = "POST"', f"wrk.body = [==[{body.decode()}]==]"]
    lua += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write("\n".join(lua) + "\n")
        script.flush()
        command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{max(1, round(seconds))}s"]
        out = subprocess.run([*command, "-s", script.name, url], capture_output=True, text=True, check=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    if bad or errors:
        print(f"  wrk reported: {bad.group(0) if bad else ''} {errors.group(0) if errors else ''}".rstrip())
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    latency = re.search(r"Latency\s+(\S+)", out)
    if rate is None:
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    return float(rate.group(1)), latency.group(1) if latency else "?"


async def run_aiohttp(
    url: str, body: bytes, headers: dict[str, str], args: argparse.Namespace, seconds: float
) -> tuple[float, str]:
    import aiohttp

    done = failed = 0
    waited = 0.0
    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done, failed
            nonlocal waited
            while (sent := time.perf_counter()) < deadline:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    waited += time.perf_counter() - sent
                    if response.status == 200:
                        done += 1
                    else:
                        failed += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.connections)))
        elapsed = time.perf_counter() - started
    if failed:
        print(f"  aiohttp: {failed} non-200 responses")
    return done / elapsed, f"{waited / max(1, done + failed) * 1000:.2f}ms"


def children_ticks() -> int:
    """CPU ticks of the benchmark's finished children (wrk), user + system."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((usage.ru_utime + usage.ru_stime) * TICK)


def check(name: str, url: str, body: bytes, headers: dict[str, str]) -> None:
    """One request answered as expected (200; for the GraphQL servers, 50 campaigns)."""
    status, answer = post(url, body, headers)
    if status != 200:
        raise RuntimeError(f"{name}: HTTP {status}: {answer[:300]!r}")
    if name != "plain":
        data = json.loads(answer)
        if data.get("errors") or data["data"]["campaigns"]["totalCount"] != CAMPAIGNS:
            raise RuntimeError(f"{name} answered {answer[:300]!r}")


def measure(
    name: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    args: argparse.Namespace,
    pid: int,
    database: str,
    seconds: float,
    timed: bool = True,
) -> tuple[float, float]:
    """Requests/s of one run of `seconds`, and requests per CPU-second of the server
    process (steadier than the rate when other processes share the machine); a timed run
    prints them."""
    pids = {"server": pid, "bench": os.getpid()}
    before, wrk_before, started = cpu_snapshot(pids, database), children_ticks(), time.perf_counter()
    server_before = ticks(pid)
    if shutil.which("wrk"):
        rate, latency = run_wrk(url, body, headers, args, seconds)
    else:
        rate, latency = asyncio.run(run_aiohttp(url, body, headers, args, seconds))
    after, elapsed = cpu_snapshot(pids, database), time.perf_counter() - started
    before["wrk"], after["wrk"] = {0: wrk_before}, {0: children_ticks()}
    per_cpu = rate * elapsed / max(1, ticks(pid) - server_before) * TICK
    if timed:
        print(
            f"{name}: {rate:,.0f} requests/s, mean latency {latency} "
            f"({args.connections} connections, {seconds:g} s); {per_cpu:,.0f} per server CPU-second"
        )
        print(cpu_report(before, after, elapsed))
    return rate, per_cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per timed run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of floor and graphql, taking turns")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--strict", action="store_true", help="exit 1 on FAIL")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="campaigns-bench-")
    database_url = args.database_url or f"sqlite://{tmp}/bench.sqlite3"
    # PostgreSQL backends of this database count as `postgres`, the server's others as `other`
    database = database_url.rsplit("/", 1)[-1] if database_url.startswith("postgres") else "-"
    try:
        key = asyncio.run(seed(database_url))
        tool = "wrk" if shutil.which("wrk") else "aiohttp client (wrk not found)"
        print(f"code {revision()}; database {database_url.split('@')[-1]}, {CAMPAIGNS} campaigns; load: {tool}")
        body = json.dumps({"query": QUERY}).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": args.redis_url}
        servers = {
            "plain": ("graphql_query:plain_app", ["--app-dir", str(BENCH_DIR)], "/"),
            "floor": ("graphql_query:floor_app", ["--app-dir", str(BENCH_DIR)], "/"),
            "graphql": ("server:create_app", [], "/graphql"),
        }
        rates: dict[str, list[float]] = {name: [] for name in servers}
        per_cpu: dict[str, list[float]] = {name: [] for name in servers}
        running: dict[str, tuple[subprocess.Popen[bytes], str, Path]] = {}
        try:
            for group, rounds in ((("plain",), 1), (("floor", "graphql"), args.rounds)):
                for name in group:
                    app, extra, path = servers[name]
                    log = Path(tmp) / f"{name}.log"
                    process, port = start_server(app, extra, env, log)
                    running[name] = (process, f"http://127.0.0.1:{port}{path}", log)
                    check(name, running[name][1], body, headers)
                    measure(name, running[name][1], body, headers, args, process.pid, database, args.warmup, False)
                for turn in range(rounds):
                    for name in group:
                        if rounds > 1:
                            print(f"round {turn + 1}/{rounds}, ", end="")
                        # The server not measured is stopped (SIGSTOP), so its timers take no CPU
                        for other in group:
                            os.kill(running[other][0].pid, signal.SIGCONT if other == name else signal.SIGSTOP)
                        process, url, _ = running[name]
                        rate, cpu = measure(name, url, body, headers, args, process.pid, database, args.duration)
                        rates[name].append(rate)
                        per_cpu[name].append(cpu)
                for name in group:
                    process, _, log = running.pop(name)
                    os.kill(process.pid, signal.SIGCONT)
                    stop(process, name, log)
        finally:
            for process, _, log in running.values():
                os.kill(process.pid, signal.SIGCONT)
                stop(process, "left running", log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    passed = True
    for baseline, target in (("plain", TARGET), ("floor", FLOOR_TARGET)):
        # Each graphql run against the floor run just before it; plain ran once, first.
        runs = rates["graphql"]
        base = rates[baseline] if len(rates[baseline]) == len(runs) else rates[baseline][:1] * len(runs)
        ratios = [g / b for g, b in zip(runs, base, strict=True)]
        ratio = statistics.median(ratios)
        ok = ratio >= target
        passed = passed and ok
        steady = statistics.median(per_cpu["graphql"]) / statistics.median(per_cpu[baseline])
        each = ", ".join(f"{r:.2f}" for r in ratios) if len(ratios) > 1 else ""
        print(
            f"ratio graphql/{baseline} {ratio:.2f}{f' (median of {each})' if each else ''} (target >= {target:.2f})"
            f" {'PASS' if ok else 'FAIL'}; per server CPU-second {steady:.2f}"
        )
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
