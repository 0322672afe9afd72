"""A PostgreSQL server of the test's own, so a fault test can restart it without
touching the machine's shared cluster (docs/STACK.md, "Servers of a test's own")."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.processes import free_port


def _bindir() -> Path:
    found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
    return Path(found.stdout.strip())


class PostgresCluster:
    """initdb in a temporary directory, served on a free port of 127.0.0.1 (trust auth).
    initdb refuses root, so as root it runs as the `postgres` user."""

    def __init__(self) -> None:
        self.bindir = _bindir()
        self.directory = Path(tempfile.mkdtemp(prefix="campaigns-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self._as, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args], check=True, stdout=subprocess.DEVNULL
        )

    def init(self) -> None:
        subprocess.run(
            [*self._as, str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._ctl("-o", options, "-l", str(self.directory / "log"), "-w", "start")
        self._wait()

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop")

    def crash_restart(self) -> None:
        """As a crash does: the server dies at once (no checkpoint), then comes back."""
        self.stop("immediate")
        self.start()

    def _wait(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on {self.port} did not start: {(self.directory / 'log').read_text()}")
            time.sleep(0.05)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.directory, ignore_errors=True)
