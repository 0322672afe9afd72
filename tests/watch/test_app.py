"""The command: where the key comes from, and `campaigns watch` end to end against
`campaigns dev`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.processes import free_port, stop, wait_http
from watch.app import resolve_key

ROOT = Path(__file__).resolve().parents[2]


def test_key_from_flag_then_environment_then_dev_file(tmp_path: Path) -> None:
    key_file = tmp_path / "dev-api-key"
    assert resolve_key(None, {}, key_file) is None
    key_file.write_text("cmp_file\n")
    assert resolve_key(None, {}, key_file) == "cmp_file"
    assert resolve_key(None, {"CAMPAIGNS_API_KEY": "cmp_env"}, key_file) == "cmp_env"
    assert resolve_key("cmp_flag", {"CAMPAIGNS_API_KEY": "cmp_env"}, key_file) == "cmp_flag"


class Dev:
    def __init__(self, base: str, key: str, workdir: Path, env: dict[str, str]) -> None:
        self.base, self.key, self.workdir, self.env = base, key, workdir, env

    def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.base}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=30,
        )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def create(self, recipients: int) -> str:
        created = self.gql(
            "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { id } userErrors { message } } }",
            # the dev sender sends templates only (the 24-hour window): Meta's hello_world takes no parameter
            input={
                "name": "Watched",
                "body": "Hi",
                "templateName": "hello_world",
                "templateLanguage": "en_US",
                "failureThreshold": None,
            },
        )["createCampaign"]
        assert created["userErrors"] == [], created
        gid = str(created["campaign"]["id"])
        if recipients:
            rows = "".join(f"+1415{2000000 + i:07d},User {i}\n" for i in range(recipients))
            response = httpx.post(
                f"{self.base}/campaigns/{gid}/recipients",
                content=f"phone,name\n{rows}",
                headers={"Authorization": f"Bearer {self.key}", "Content-Type": "text/csv"},
                timeout=30,
            )
            assert response.json()["added"] == recipients, response.text
        return gid

    def send(self, gid: str) -> None:
        sent = self.gql("mutation($id: ID!) { sendCampaignNow(id: $id) { userErrors { message } } }", id=gid)
        assert sent["sendCampaignNow"]["userErrors"] == [], sent

    def watch(self, *args: str, cwd: Path = ROOT) -> Watching:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "watch", *args],
            cwd=cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return Watching(proc)


class Watching:
    """A `campaigns watch` subprocess whose output is collected as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(proc.stderr, self.errors), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str] | None, into: list[str]) -> None:
        assert stream is not None
        for line in stream:
            into.append(line.rstrip("\n"))

    def wait_for_output(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not self.lines:
            assert self.proc.poll() is None, self.finish(1)
            assert time.monotonic() < deadline, "no output from campaigns watch"
            time.sleep(0.05)

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        """(exit status, stderr) once it exits."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"campaigns watch still running after {timeout}s: {self.lines[-3:]}") from None
        for reader in self._readers:
            reader.join(5)
        return self.proc.returncode, "\n".join(self.errors)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    workdir = tmp_path_factory.mktemp("watch-dev")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "WHATSAPP_API_BASE")}
    env |= {"WHATSAPP_RATE_LIMIT": "500", "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
    # 1,000 recipients on the development sender (the simulator's number): no daily limit
    env["SIMULATOR_MESSAGING_LIMIT_TIER"] = "TIER_UNLIMITED"
    env.pop("CAMPAIGNS_API_KEY", None)
    log = open(workdir / "dev.log", "wb")  # closed in finally
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "dev", "--port", str(port), "--latency-ms", "30"],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", proc, (workdir / "dev.log").read_text)
        key = (workdir / "data" / "dev-api-key").read_text().strip()
        yield Dev(base, key, workdir, env)
    finally:
        stop(proc, signal.SIGINT)
        log.close()


PERCENT = re.compile(r"\s(\d+\.\d)%\s")


def test_watch_follows_a_real_send_to_the_settled_end(dev: Dev) -> None:
    gid = dev.create(1000)
    watching = dev.watch(gid, "--url", dev.base, "--key", dev.key, "--settle", "2")
    watching.wait_for_output()  # subscribed, showing the DRAFT
    dev.send(gid)
    status, err = watching.finish(timeout=40)
    lines = watching.lines
    assert status == 0, (lines[-5:], err)
    assert lines[0].startswith("DRAFT") and "0/1000" in lines[0]
    progress = [float(m.group(1)) for line in lines[:-1] if (m := PERCENT.search(f" {line} "))]
    assert progress == sorted(progress), lines
    assert progress[0] == 0.0 and progress[-1] == 100.0
    assert any(0 < p < 100 for p in progress), lines  # seen while sending, not only before and after
    assert "COMPLETED" in lines[-2] and "ETA 0s" in lines[-2]
    final = lines[-1]
    assert final.startswith("COMPLETED: total 1000, ") and final.endswith(", pending 0"), final
    assert err == ""


def test_a_bad_key_exits_1_with_a_message(dev: Dev) -> None:
    status, err = dev.watch("Q2FtcGFpZ246MQ", "--url", dev.base, "--key", "cmp_not-a-key").finish(timeout=15)
    assert status == 1
    assert "authentication failed" in err and "Traceback" not in err


def test_an_unknown_campaign_exits_1_with_a_message(dev: Dev) -> None:
    status, err = dev.watch("bm8tc3VjaA", "--url", dev.base, "--key", dev.key).finish(timeout=15)
    assert status == 1
    assert "not found" in err and "Traceback" not in err


def test_ctrl_c_exits_130_and_the_key_comes_from_the_dev_directory(dev: Dev) -> None:
    gid = dev.create(0)
    watching = dev.watch(gid, "--url", dev.base, cwd=dev.workdir)  # data/dev-api-key is here
    watching.wait_for_output()
    watching.proc.send_signal(signal.SIGINT)
    status, err = watching.finish(timeout=15)
    assert status == 130
    assert "interrupted" in err and "Traceback" not in err
    assert watching.lines[0].startswith("DRAFT")
