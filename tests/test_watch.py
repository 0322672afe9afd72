"""`campaigns watch ID`: the pure rendering, the protocol against a scripted server,
and the command end to end against `campaigns dev`."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from websockets.asyncio.server import ServerConnection, serve

from runtime.watch import (
    PROTOCOL,
    Display,
    Snapshot,
    Watcher,
    WatchError,
    format_duration,
    format_eta,
    format_percent,
    render_bar,
    render_line,
    render_plain,
    render_summary,
    resolve_key,
    ws_url,
)

ROOT = Path(__file__).resolve().parents[1]

RUNNING = Snapshot(
    "Q2FtcGFpZ246MQ", "PROCESSING", total=5000, pending=4614, sent=386, delivered=59, read=3, failed=0, send_rate=382.4
)
LATER = replace(RUNNING, pending=408, sent=4572, delivered=3959, read=1668, failed=20)
DONE = Snapshot(
    "Q2FtcGFpZ246MQ",
    "COMPLETED",
    total=1000,
    pending=0,
    sent=990,
    delivered=900,
    read=450,
    failed=10,
    delivery_rate=900 / 990,
    read_rate=0.5,
    failure_rate=0.01,
)


# --- pure rendering -----------------------------------------------------------------


def test_percent_rounds_down_so_100_means_done() -> None:
    assert format_percent(386, 5000) == "7.7%"
    assert format_percent(9999, 10000) == "99.9%"
    assert format_percent(1000, 1000) == "100.0%"
    assert format_percent(0, 0) == "0.0%"


def test_eta_is_pending_over_rate_and_unknown_without_a_rate() -> None:
    assert format_eta(4614, 382.4) == "13s"
    assert format_eta(100, 0.0) == "--"
    assert format_eta(0, 0.0) == "0s"
    assert format_eta(10**6, float("nan")) == "--"
    assert [format_duration(s) for s in (0.2, 59, 61, 3599, 3600, 7322, 10**7)] == [
        "1s",
        "59s",
        "1m01s",
        "59m59s",
        "1h00m",
        "2h02m",
        ">99h",
    ]


def test_bar_fills_in_proportion_and_is_full_only_when_done() -> None:
    assert render_bar(0, 100, 10, unicode=False) == "----------"
    assert render_bar(50, 100, 10, unicode=False) == "#####-----"
    assert render_bar(99, 100, 10, unicode=False) == "#########-"
    assert render_bar(100, 100, 10, unicode=False) == "##########"
    assert render_bar(5, 0, 4, unicode=False) == "----"
    assert render_bar(4, 16, 2) == "▌ "  # eighths of a cell on a Unicode terminal
    assert all(len(render_bar(i, 37, 13)) == 13 for i in range(38))


def test_wide_line_shows_every_field() -> None:
    line = render_line(RUNNING, 200)
    assert line.startswith("PROCESSING [")
    for part in ("7.7%", "386/5000", "sent 386", "delivered 59", "read 3", "failed 0", "cancelled 0", "pending 4614"):
        assert part in line
    assert "382 msg/s" in line and "ETA 13s" in line


@pytest.mark.parametrize("width", [1, 5, 20, 40, 60, 79, 80, 100, 120, 132, 200, 400])
@pytest.mark.parametrize("snap", [RUNNING, LATER, DONE, Snapshot("x", "DRAFT")])
def test_line_never_reaches_the_last_column(width: int, snap: Snapshot) -> None:
    for note in ("", "reconnecting in 3s (connection lost)"):
        assert len(render_line(snap, width, note=note)) <= max(width - 1, 1)
        assert len(render_line(snap, width, note=note, unicode=False)) <= max(width - 1, 1)


def test_detail_gives_way_to_width_but_the_bar_stays_on_80_columns() -> None:
    assert "delivered 59" in render_line(RUNNING, 200)
    assert "dlv 59" in render_line(RUNNING, 140)
    narrow = render_line(RUNNING, 80)
    assert "[" in narrow and "d:59" in narrow and "ETA 13s" in narrow
    assert "[" not in render_line(RUNNING, 50)
    assert render_line(RUNNING, 30).endswith("…")
    assert render_line(RUNNING, 30, unicode=False).endswith(">")


@pytest.mark.parametrize("width", [100, 132, 200])
def test_bar_keeps_its_place_and_size_while_the_numbers_grow(width: int) -> None:
    first, later = render_line(RUNNING, width), render_line(LATER, width)
    assert first.index("]") == later.index("]")
    paused = render_line(replace(LATER, status="PAUSED"), width)
    assert paused.index("[") == later.index("[")  # the status column is padded


def test_a_note_stands_in_for_rate_and_eta_and_takes_room_from_the_bar() -> None:
    plain = render_line(RUNNING, 132)
    counts = plain[: plain.index("  382 msg/s")]
    short = render_line(RUNNING, 132, note="settling 3s")
    assert short == counts + "  settling 3s"  # same bar, same numbers
    note = "reconnecting in 3s (connection closed (1012))"
    long = render_line(RUNNING, 132, note=note)
    assert long.endswith(note) and counts.split("] ")[1] in long
    assert long.index("]") < plain.index("]")
    narrow = render_line(LATER, 80, note="reconnecting in 3s")
    assert "p:408  reconnecting" in narrow and "[" in narrow


def test_plain_line_has_every_field_and_no_bar() -> None:
    assert render_plain(RUNNING) == (
        "PROCESSING  7.7%  386/5000  sent 386 delivered 59 read 3 failed 0 cancelled 0 pending 4614  382 msg/s  ETA 13s"
    )
    assert "ETA --" in render_plain(replace(RUNNING, send_rate=0.0))


def test_summary_has_the_final_numbers_and_rates() -> None:
    assert render_summary(DONE) == (
        "COMPLETED: total 1000, sent 990, delivered 900 (90.9%), read 450 (50.0%), "
        "failed 10 (1.0%), cancelled 0, pending 0"
    )


def test_snapshot_from_a_subscription_payload() -> None:
    snap = Snapshot.from_payload(_progress("PROCESSING", total=10, pending=4, sent=5, failed=1, rate=2.5))
    assert (snap.status, snap.total, snap.processed, snap.sent, snap.failed, snap.send_rate) == (
        "PROCESSING",
        10,
        6,
        5,
        1,
        2.5,
    )
    assert not snap.terminal and replace(snap, status="FAILED").terminal


def test_url_becomes_the_graphql_websocket() -> None:
    assert ws_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/graphql"
    assert ws_url("https://campaigns.example.com/") == "wss://campaigns.example.com/graphql"
    assert ws_url("https://example.com/api/graphql") == "wss://example.com/api/graphql"
    assert ws_url("localhost:8000") == "ws://localhost:8000/graphql"
    assert ws_url("ws://h:1/graphql") == "ws://h:1/graphql"
    with pytest.raises(ValueError):
        ws_url("ftp://example.com")


def test_key_from_flag_then_environment_then_dev_file(tmp_path: Path) -> None:
    key_file = tmp_path / "dev-api-key"
    assert resolve_key(None, {}, key_file) is None
    key_file.write_text("cmp_file\n")
    assert resolve_key(None, {}, key_file) == "cmp_file"
    assert resolve_key(None, {"CAMPAIGNS_API_KEY": "cmp_env"}, key_file) == "cmp_env"
    assert resolve_key("cmp_flag", {"CAMPAIGNS_API_KEY": "cmp_env"}, key_file) == "cmp_flag"


# --- drawing ------------------------------------------------------------------------


def test_plain_output_is_one_line_per_update_at_most_two_a_second() -> None:
    out = io.StringIO()
    display = Display(out, io.StringIO(), tty=False)
    display.show(RUNNING)
    display.flush(0.0)
    display.show(replace(RUNNING, pending=4000, sent=1000))
    display.flush(0.2)  # too soon: held back
    assert out.getvalue().count("\n") == 1
    assert display.due_in(0.2) == pytest.approx(0.3)
    display.show(LATER)  # the newest state wins
    display.flush(0.5)
    lines = out.getvalue().splitlines()
    assert lines == [render_plain(RUNNING), render_plain(LATER)]
    assert display.due_in(0.6) is None
    display.finish(DONE)
    assert out.getvalue().splitlines()[-2:] == [render_plain(DONE), render_summary(DONE)]
    assert "\r" not in out.getvalue()


def test_terminal_output_redraws_one_line_in_place() -> None:
    out = io.StringIO()
    display = Display(out, io.StringIO(), tty=True, width=lambda: 100, unicode=False)
    display.show(LATER)
    display.flush(0.0)
    display.show(RUNNING)  # a shorter line
    display.flush(1.0)
    text = out.getvalue()
    assert "\n" not in text and text.count("\r") == 2
    first, second = text.split("\r")[1:]
    assert first == render_line(LATER, 100, unicode=False)
    assert second == render_line(RUNNING, 100, unicode=False).ljust(len(first))  # blanks the rest of the old one
    display.finish(DONE)
    assert out.getvalue().endswith("\n" + render_summary(DONE) + "\n")


# --- the protocol, against a scripted server -----------------------------------------

Handler = Callable[[ServerConnection, int], Awaitable[None]]


def _progress(
    status: str, total: int, pending: int, sent: int = 0, failed: int = 0, rate: float = 0.0
) -> dict[str, Any]:
    stats = {
        "total": total,
        "pending": pending,
        "sent": sent,
        "delivered": 0,
        "read": 0,
        "failed": failed,
        "cancelled": 0,
        "progress": (total - pending) / total if total else 0.0,
        "deliveryRate": 0.0,
        "readRate": 0.0,
        "failureRate": 0.0,
    }
    return {
        "campaignId": "Q2FtcGFpZ246MQ",
        "status": status,
        "stats": stats,
        "sendRate": rate,
        "at": "2026-01-01T00:00:00+00:00",
    }


def _next(sub_id: str, progress: dict[str, Any]) -> str:
    return json.dumps({"id": sub_id, "type": "next", "payload": {"data": {"campaignProgress": progress}}})


async def _accept(ws: ServerConnection, key: str = "cmp_good") -> str:
    """The server side of connection_init/ack/subscribe; returns the subscription id."""
    init = json.loads(await ws.recv())
    assert init["type"] == "connection_init"
    if init["payload"] != {"Authorization": f"Bearer {key}"}:
        await ws.close(4403, "Forbidden")
        raise AssertionError("refused")
    await ws.send(json.dumps({"type": "connection_ack"}))
    subscribe = json.loads(await ws.recv())
    assert subscribe["type"] == "subscribe" and "campaignProgress" in subscribe["payload"]["query"]
    assert subscribe["payload"]["variables"] == {"id": "Q2FtcGFpZ246MQ"}
    return str(subscribe["id"])


@asynccontextmanager
async def scripted_server(handler: Handler) -> AsyncIterator[str]:
    """A graphql-transport-ws server running `handler(ws, n)` for its n-th connection."""
    count = 0

    async def run(ws: ServerConnection) -> None:
        nonlocal count
        count += 1
        try:
            await handler(ws, count)
        except AssertionError:
            pass

    async with serve(run, "127.0.0.1", 0, subprotocols=[PROTOCOL]) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/graphql"


def _watcher(url: str, key: str = "cmp_good", settle: float = 0.2) -> tuple[Watcher, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    display = Display(out, err, tty=False, plain_interval=0.0)
    return Watcher(url, key, "Q2FtcGFpZ246MQ", display, settle=settle, backoff=(0.05, 0.2)), out, err


async def test_watch_ends_once_a_terminal_campaign_has_settled() -> None:
    async def handler(ws: ServerConnection, _n: int) -> None:
        sub = await _accept(ws)
        await ws.send(_next(sub, _progress("PROCESSING", 10, 6, sent=4, rate=4.0)))
        await ws.send(_next(sub, _progress("COMPLETED", 10, 0, sent=10)))
        await asyncio.sleep(0.15)  # a receipt after COMPLETED restarts the settle clock
        await ws.send(_next(sub, _progress("COMPLETED", 10, 0, sent=9, failed=1)))
        await ws.wait_closed()

    async with scripted_server(handler) as url:
        watcher, out, _ = _watcher(url)
        started = time.monotonic()
        final = await asyncio.wait_for(watcher.run(), 5)
    assert time.monotonic() - started >= 0.35
    assert (final.status, final.failed) == ("COMPLETED", 1)
    assert out.getvalue().splitlines()[0].startswith("PROCESSING  40.0%")


async def test_pings_are_answered_with_pongs() -> None:
    pongs: list[dict[str, Any]] = []

    async def handler(ws: ServerConnection, _n: int) -> None:
        sub = await _accept(ws)
        await ws.send(json.dumps({"type": "ping"}))
        pongs.append(json.loads(await ws.recv()))
        await ws.send(_next(sub, _progress("COMPLETED", 1, 0, sent=1)))
        await ws.wait_closed()

    async with scripted_server(handler) as url:
        watcher, _, _ = _watcher(url)
        await asyncio.wait_for(watcher.run(), 5)
    assert pongs == [{"type": "pong"}]


async def test_a_dropped_connection_is_reopened_and_the_watch_goes_on() -> None:
    async def handler(ws: ServerConnection, n: int) -> None:
        sub = await _accept(ws)
        if n == 1:
            await ws.send(_next(sub, _progress("PROCESSING", 10, 8, sent=2)))
            await asyncio.sleep(0.05)
            ws.transport.abort()  # no close frame: the network went away
        elif n == 2:
            await ws.send(_next(sub, _progress("PROCESSING", 10, 5, sent=5)))
            await ws.close(1012, "service restart")
        else:
            await ws.send(_next(sub, _progress("COMPLETED", 10, 0, sent=10)))
            await ws.wait_closed()

    async with scripted_server(handler) as url:
        watcher, out, err = _watcher(url)
        final = await asyncio.wait_for(watcher.run(), 10)
    assert watcher.connections == 3 and final.status == "COMPLETED"
    told = err.getvalue().splitlines()
    assert [line.split(" (")[0] for line in told] == [
        "campaigns watch: connection lost",
        "campaigns watch: reconnected",
        "campaigns watch: connection lost",
        "campaigns watch: reconnected",
    ]
    assert "1012 service restart" in told[2]
    assert [line.split()[1] for line in out.getvalue().splitlines()] == ["20.0%", "50.0%", "100.0%"]


async def test_a_refused_key_is_an_error_not_a_retry() -> None:
    async def handler(ws: ServerConnection, _n: int) -> None:
        await _accept(ws, key="cmp_good")

    async with scripted_server(handler) as url:
        watcher, _, _ = _watcher(url, key="cmp_bad")
        with pytest.raises(WatchError, match=r"authentication failed.*4403"):
            await asyncio.wait_for(watcher.run(), 5)


@pytest.mark.parametrize("style", ["error", "next"])
async def test_an_unknown_campaign_is_an_error(style: str) -> None:
    errors = [{"message": "No campaign with id 'x'.", "extensions": {"code": "NOT_FOUND"}}]

    async def handler(ws: ServerConnection, _n: int) -> None:
        sub = await _accept(ws)
        payload: Any = errors if style == "error" else {"data": None, "errors": errors}
        await ws.send(json.dumps({"id": sub, "type": style, "payload": payload}))
        await ws.wait_closed()

    async with scripted_server(handler) as url:
        watcher, _, _ = _watcher(url)
        with pytest.raises(WatchError, match="not found"):
            await asyncio.wait_for(watcher.run(), 5)


async def test_no_server_is_an_error_at_once() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    watcher, _, _ = _watcher(f"ws://127.0.0.1:{port}/graphql")
    with pytest.raises(WatchError, match="cannot connect"):
        await asyncio.wait_for(watcher.run(), 5)


# --- end to end: `campaigns watch` against `campaigns dev` ----------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
            input={"name": "Watched", "body": "Hi {{name}}", "failureThreshold": None},
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
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "WHATSAPP_API_BASE")}
    env |= {"WHATSAPP_RATE_LIMIT": "500", "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
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
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (workdir / "dev.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "campaigns dev did not start"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        key = (workdir / "data" / "dev-api-key").read_text().strip()
        yield Dev(base, key, workdir, env)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
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


async def test_a_server_that_stays_away_ends_the_watch_with_an_error() -> None:
    async def handler(ws: ServerConnection, n: int) -> None:
        if n == 1:
            sub = await _accept(ws)
            await ws.send(_next(sub, _progress("PROCESSING", 10, 8, sent=2)))
            await asyncio.sleep(0.05)
        await ws.close(1011, "internal error")

    async with scripted_server(handler) as url:
        out, err = io.StringIO(), io.StringIO()
        display = Display(out, err, tty=False, plain_interval=0.0)
        watcher = Watcher(url, "cmp_good", "Q2FtcGFpZ246MQ", display, backoff=(0.05, 0.1), give_up_after=0.4)
        with pytest.raises(WatchError, match="could not get it back"):
            await asyncio.wait_for(watcher.run(), 5)
    told = err.getvalue().splitlines()
    assert told[0].startswith("campaigns watch: connection lost (connection closed (1011 internal error))")
    assert len(told) > 2 and all(line.startswith("campaigns watch: reconnecting failed") for line in told[1:])
