"""Real processes in tests: a free port, waiting until one answers HTTP, stopping one,
another API process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Callable[[], str], timeout: float = 30) -> None:
    """Return once `url` answers below 500; fail with the tail of `log()` if `proc` exits
    first or nothing answers within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited {proc.returncode}: {log()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered at {url} within {timeout} s: {log()[-3000:]}")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    """Send `sig`, wait up to `timeout` seconds, then SIGKILL; the exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


@contextmanager
def api_process(settings: Settings, logs: Path, **env: str) -> Iterator[str]:
    """Another `campaigns serve` on the test database and Redis (more environment in
    `env`); yields its base URL, stopped on exit."""
    port = free_port()
    full = dict(os.environ, DATABASE_URL=settings.database_url, REDIS_URL=settings.redis_url or "", LOG_LEVEL="WARNING")
    full |= {
        "WHATSAPP_ACCESS_TOKEN": "t",
        "WHATSAPP_APP_SECRET": "s",
        "WHATSAPP_VERIFY_TOKEN": "v",
        "SENDER_TOKEN_KEY": "dGVzdC1zZW5kZXItdG9rZW4ta2V5LTMyLWJ5dGVzISE=",
    } | env
    log = logs / f"api-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=ROOT, env=full, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", proc, log.read_text)
        yield url
    finally:
        stop(proc)
