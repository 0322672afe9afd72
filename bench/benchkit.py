"""What the benchmarks share: the measured revision, free ports, CPU ticks of a process,
and the subprocesses of a run (started with logs, waited for, always stopped)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
#: `campaigns serve` and `worker` refuse the development secrets; the benchmarks' own,
#: told to the simulator too
SECRETS = {
    "WHATSAPP_ACCESS_TOKEN": "bench-access-token",
    "WHATSAPP_APP_SECRET": "bench-app-secret",
    "WHATSAPP_VERIFY_TOKEN": "bench-verify-token",
    # a Fernet key of the benchmarks' own: `serve` and `worker` refuse the development one
    "SENDER_TOKEN_KEY": "YmVuY2gtc2VuZGVyLXRva2VuLWtleS0zMi1ieXRlcyE=",
    "SIMULATOR_ACCESS_TOKEN": "bench-access-token",
    "SIMULATOR_APP_SECRET": "bench-app-secret",
}


#: benchmarks send far more than a day's messaging limit to one number: neither the
#: service nor the simulator applies one
UNLIMITED = {"WHATSAPP_MESSAGING_TIER": "TIER_UNLIMITED", "SIMULATOR_MESSAGING_LIMIT_TIER": "TIER_UNLIMITED"}


#: the simulator posting every status of every message, once and in order (seeded): the
#: k-th status posted and the counter reaching k then mean the same message
EVERY_STATUS_IN_ORDER = {
    "SIMULATOR_SEED": "7",
    "SIMULATOR_DELIVERED_PROBABILITY": "1.0",
    "SIMULATOR_READ_PROBABILITY": "1.0",
    "SIMULATOR_DUPLICATE_WEBHOOK_PROBABILITY": "0",
    "SIMULATOR_OUT_OF_ORDER_PROBABILITY": "0",
    "SIMULATOR_LATE_PROBABILITY": "0",
}


def service_env(database_url: str, redis_url: str, **settings: str) -> dict[str, str]:
    """The environment of the benchmark's processes: this one's without its SIMULATOR_*
    (each run states the simulator's behaviour it measures), the benchmarks' secrets,
    no daily messaging limit, WARNING logs, the database and Redis, then `settings`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SIMULATOR_")}
    base = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}
    return inherited | SECRETS | UNLIMITED | base | settings


def with_database(url: str, name: str) -> str:
    """`url` naming another database of the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql", path=f"/{name}"))


async def recreate_database(url: str) -> str:
    """Drop and create the database `url` names (the benchmarks' own); its name."""
    import asyncpg

    name = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(with_database(url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


def revision() -> str:
    """The measured code: commit, and whether the working tree differs from it."""
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TICK = os.sysconf("SC_CLK_TCK")
Snapshot = dict[str, dict[int, int]]


def ticks(pid: int) -> int:
    """CPU time a process used so far (user + system), in clock ticks; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError):
        return 0


class Procs:
    """The subprocesses of a run, each logging to `logs/<name>.log`: all stopped at the
    end, also on error."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.procs = env, logs, dict[str, subprocess.Popen[bytes]]()

    def spawn(self, name: str, *argv: str) -> int:
        with open(self.logs / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        return self.procs[name].pid

    async def wait_until(
        self, name: str, ready: Callable[[], Awaitable[object]], not_yet: tuple[type[Exception], ...] = (OSError,)
    ) -> None:
        """Until `ready()` is true (raising one of `not_yet` counts as not yet); fails at
        once if the process exits, with the end of its log."""
        for _ in range(300):
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {(self.logs / f'{name}.log').read_text()[-2000:]}")
            try:
                if await ready():
                    return
            except not_yet:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{name} not ready after 30 s")

    async def listening(self, name: str, port: int) -> None:
        async def accepts() -> bool:
            (await asyncio.open_connection("127.0.0.1", port))[1].close()
            return True

        await self.wait_until(name, accepts)

    def stop(self, *names: str) -> None:
        """SIGTERM, then SIGKILL after 15 s; every process when no name is given."""
        for proc in [self.procs.pop(name) for name in names or list(self.procs)]:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def errors(self, name: str) -> int:
        """ERROR lines in the JSON log of `name`."""
        return (self.logs / f"{name}.log").read_text(errors="replace").count('"level": "ERROR"')


def _pids(comm: str, database: str) -> list[int]:
    """Processes named `comm`; of PostgreSQL, the server's own and `database`'s backends only."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == comm:
                title = (entry / "cmdline").read_text().replace("\0", " ")
                if f" {database} " in title or not any(h in title for h in ("127.0.0.1(", "[local]", "::1(")):
                    found.append(int(entry.name))
        except OSError:
            pass
    return found


def cpu_snapshot(pids: dict[str, int], database: str) -> Snapshot:
    snap = {name: {pid: ticks(pid)} for name, pid in pids.items()}
    for name, comm in (("postgres", "postgres"), ("redis", "redis-server")):
        snap[name] = {p: ticks(p) for p in _pids(comm, database)}
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    snap["machine"] = {0: sum(values) - values[3] - values[4], 1: sum(values), 2: values[7]}  # busy, all, steal
    return snap


def cpu_report(before: Snapshot, after: Snapshot, seconds: float) -> str:
    """% of one core per process; `other`: the rest of the machine's busy time (not this benchmark)."""
    used = {k: sum(t - before[k].get(p, 0) for p, t in v.items()) / TICK / seconds * 100 for k, v in after.items()}
    m0, m1, cpus = before["machine"], after["machine"], os.cpu_count() or 1
    share = cpus * 100 / ((m1[1] - m0[1]) or 1)
    del used["machine"]
    busy, steal = (m1[0] - m0[0]) * share, (m1[2] - m0[2]) * share
    used["other"] = busy - sum(used.values())
    warn = "  <- other processes share this machine: distrust these figures" if used["other"] > 25 else ""
    parts = ", ".join(f"{name} {pct:.0f}%" for name, pct in used.items())
    return f"  CPU (% of one core): {parts}; machine {busy:.0f}% of {cpus * 100}% (steal {steal:.0f}%){warn}"


async def gql(http: Any, api: str, key: str, query: str, **variables: Any) -> dict[str, Any]:
    """POST a GraphQL operation to `api` (the service's base URL) with `key`: its data,
    or RuntimeError with the errors. `http` is an aiohttp ClientSession."""
    body, headers = {"query": query, "variables": variables}, {"Authorization": f"Bearer {key}"}
    async with http.post(f"{api}/graphql", json=body, headers=headers) as response:
        answer = await response.json()
    if answer.get("errors"):
        raise RuntimeError(f"GraphQL errors: {answer['errors']}")
    return dict(answer["data"])


async def get_json(http: Any, url: str, **params: Any) -> dict[str, Any]:
    """GET `url` as JSON; {} when it answers 5xx (a process still starting)."""
    async with http.get(url, params=params) as response:
        return dict(await response.json()) if response.status < 500 else {}
