"""`campaigns watch ID`: a campaign's live progress in the terminal.

Subscribes to `campaignProgress` over the GraphQL WebSocket (graphql-transport-ws) and
redraws one line per update: status, a bar of processed/total, the counts, the current
send rate and an ETA. Off a terminal it prints one plain line per update instead, at
most two a second. It ends when the campaign is terminal and its numbers have not
changed for `--settle` seconds (receipts keep arriving after COMPLETED), with a summary.

Exit status: 0 done; 1 bad key, unknown campaign, or no connection; 130 on Ctrl-C.
A connection that drops mid-watch is reopened with backoff: a new subscription starts
with a fresh snapshot, so nothing is missed.

The rendering (`render_line`, `render_plain`, `render_summary`) is pure; `Display`
decides when to draw; `Watcher` speaks the protocol.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Subprotocol

TERMINAL = frozenset({"COMPLETED", "CANCELLED", "FAILED"})
PROTOCOL = Subprotocol("graphql-transport-ws")
DEV_KEY_FILE = Path("data") / "dev-api-key"
KEY_ENV = "CAMPAIGNS_API_KEY"

QUERY = """subscription Watch($id: ID!) {
  campaignProgress(id: $id) {
    campaignId status sendRate at
    stats { total pending sent delivered read failed cancelled progress deliveryRate readRate failureRate }
  }
}"""

# Close codes of graphql-transport-ws that mean "your credentials", not "try again".
AUTH_CLOSE_CODES = frozenset({4401, 4403})


# --- the snapshot and its rendering (pure) ------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """One `CampaignProgress` event."""

    campaign_id: str
    status: str
    total: int = 0
    pending: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    cancelled: int = 0
    delivery_rate: float = 0.0
    read_rate: float = 0.0
    failure_rate: float = 0.0
    send_rate: float = 0.0
    at: str = ""

    @classmethod
    def from_payload(cls, progress: Mapping[str, Any]) -> Snapshot:
        stats = progress.get("stats") or {}

        def count(name: str) -> int:
            return int(stats.get(name) or 0)

        def ratio(name: str) -> float:
            return float(stats.get(name) or 0.0)

        return cls(
            campaign_id=str(progress.get("campaignId") or ""),
            status=str(progress.get("status") or "?"),
            total=count("total"),
            pending=count("pending"),
            sent=count("sent"),
            delivered=count("delivered"),
            read=count("read"),
            failed=count("failed"),
            cancelled=count("cancelled"),
            delivery_rate=ratio("deliveryRate"),
            read_rate=ratio("readRate"),
            failure_rate=ratio("failureRate"),
            send_rate=float(progress.get("sendRate") or 0.0),
            at=str(progress.get("at") or ""),
        )

    @property
    def processed(self) -> int:
        return min(max(self.total - self.pending, 0), self.total)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def numbers(self) -> tuple[object, ...]:
        """What "settled" compares: the status and the counts (not the rate or time)."""
        return (
            self.status,
            self.total,
            self.pending,
            self.sent,
            self.delivered,
            self.read,
            self.failed,
            self.cancelled,
        )


def format_percent(done: int, total: int) -> str:
    """Rounded down to a tenth, so 100.0% means every message is processed."""
    tenths = done * 1000 // total if total > 0 else 0
    return f"{tenths // 10}.{tenths % 10}%"


def format_rate(rate: float) -> str:
    if not math.isfinite(rate) or rate <= 0:
        return "0"
    return f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"


def format_duration(seconds: float) -> str:
    s = math.ceil(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 100 * 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return ">99h"


def format_eta(pending: int, rate: float) -> str:
    """pending / rate; "--" when the rate is unknown (zero) and work remains."""
    if pending <= 0:
        return "0s"
    if not math.isfinite(rate) or rate <= 0:
        return "--"
    return format_duration(pending / rate)


_EIGHTHS = " ▏▎▍▌▋▊▉"


def render_bar(done: int, total: int, width: int, *, unicode: bool = True) -> str:
    """`width` cells, filled in proportion done/total (rounded down; full only when done)."""
    if width <= 0:
        return ""
    fraction = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
    if not unicode:
        full = math.floor(fraction * width)
        return "#" * full + "-" * (width - full)
    eighths = math.floor(fraction * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + (_EIGHTHS[part] if part else "")
    return bar + " " * (width - len(bar))


_LABELS = {
    "long": ("sent", "delivered", "read", "failed", "cancelled", "pending"),
    "short": ("sent", "dlv", "read", "fail", "canc", "pend"),
    "tiny": ("s:", "d:", "r:", "f:", "c:", "p:"),
}
STYLES = ("long", "short", "tiny")
MIN_BAR, MAX_BAR = 10, 40
TINY_BAR = 4  # the least bar worth drawing on a narrow terminal
STATUS_WIDTH = len("PROCESSING")  # the longest status: the bar does not move when it changes
GAP = "  "


def _parts(snap: Snapshot, style: str, *, note: str = "", widest: bool = False) -> list[str]:
    """Everything right of the bar at one level of detail. A `note` stands in for the
    rate and the ETA, which it makes moot (a lost connection has no current rate, a
    settling campaign no ETA). `widest`: as wide as this campaign's line can get (every
    count at total, a 4-digit rate, a 6-character ETA), which fixes the layout so the
    bar does not shrink as the numbers grow."""
    values = (snap.sent, snap.delivered, snap.read, snap.failed, snap.cancelled, snap.pending)
    percent = format_percent(snap.processed, snap.total).rjust(6)
    rate, eta = format_rate(snap.send_rate), format_eta(snap.pending, snap.send_rate)
    if widest:
        values, percent, rate, eta = (snap.total,) * 6, "100.0%", "9999", "59m59s"
    sep = "" if style == "tiny" else " "
    parts = [percent]
    if style == "long":
        parts.append(f"{snap.total if widest else snap.processed}/{snap.total}")
    parts.append(" ".join(f"{label}{sep}{value}" for label, value in zip(_LABELS[style], values, strict=True)))
    if note:
        return [*parts, note]
    parts.append(f"{rate}/s" if style == "tiny" else f"{rate} msg/s")
    parts.append(f"ETA {eta}")
    return parts


def _layout(snap: Snapshot, room: int) -> tuple[str, int] | None:
    """(style, bar width) for `room` columns, or None when no bar fits.

    The most detailed style whose widest line for this campaign leaves MIN_BAR cells
    wins, so the layout stays put while the numbers grow. Where none does (narrow
    terminals), the tiny style with the room left by the actual numbers."""
    fixed = STATUS_WIDTH + 4  # " [" "]" " "
    for style in STYLES:
        bar = room - fixed - len(GAP.join(_parts(snap, style, widest=True)))
        if bar >= MIN_BAR:
            return style, min(bar, MAX_BAR)
    bar = room - fixed - len(GAP.join(_parts(snap, "tiny")))
    return ("tiny", min(bar, MAX_BAR)) if bar >= TINY_BAR else None


def _cut(line: str, room: int, unicode: bool) -> str:
    if len(line) <= room:
        return line
    return line[: room - 1] + ("…" if unicode else ">") if room > 1 else line[:room]


def render_line(snap: Snapshot, width: int, *, unicode: bool = True, note: str = "") -> str:
    """The progress line for a terminal `width` columns wide, never longer than
    width - 1 (writing the last column makes some terminals wrap).

    Detail gives way to width in this order: long labels and the done/total count,
    then short labels, then one-letter labels, then the bar; at last the line is cut.
    A `note` (reconnecting, settling) replaces the rate and ETA at the end; where it
    is longer, it takes room from the bar down to MIN_BAR cells, never the layout, and
    is cut where the line must be."""
    room = max(width - 1, 1)
    layout = _layout(snap, room)
    if layout is None:
        return _cut(GAP.join([snap.status, *_parts(snap, "tiny", note=note)]), room, unicode)
    style, bar_width = layout
    tail = GAP.join(_parts(snap, style, note=note))
    status = snap.status.ljust(STATUS_WIDTH)
    shortfall = len(status) + 4 + bar_width + len(tail) - room
    if shortfall > 0:
        bar_width -= min(shortfall, max(bar_width - (MIN_BAR if bar_width >= MIN_BAR else TINY_BAR), 0))
    bar = render_bar(snap.processed, snap.total, bar_width, unicode=unicode)
    return _cut(f"{status} [{bar}] {tail}", room, unicode)


def render_plain(snap: Snapshot) -> str:
    """One line for a log or a pipe: every field, full labels, no bar."""
    return GAP.join([snap.status, *(part.strip() for part in _parts(snap, "long"))])


def render_summary(snap: Snapshot) -> str:
    """The last line printed: the settled numbers, each rate beside its count."""
    return (
        f"{snap.status}: total {snap.total}, sent {snap.sent}, "
        f"delivered {snap.delivered} ({snap.delivery_rate:.1%}), read {snap.read} ({snap.read_rate:.1%}), "
        f"failed {snap.failed} ({snap.failure_rate:.1%}), cancelled {snap.cancelled}, pending {snap.pending}"
    )


# --- configuration ------------------------------------------------------------------


def ws_url(url: str) -> str:
    """http://host:8000 → ws://host:8000/graphql; https → wss; a path is kept."""
    parts = urlsplit(url.strip() if "://" in url else f"http://{url.strip()}")
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ValueError(f"not an http(s) or ws(s) URL: {url!r}")
    path = parts.path.rstrip("/") or "/graphql"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def resolve_key(given: str | None, env: Mapping[str, str], key_file: Path = DEV_KEY_FILE) -> str | None:
    """--key, else $CAMPAIGNS_API_KEY, else the key `campaigns dev` wrote here."""
    for candidate in (given, env.get(KEY_ENV)):
        if candidate and candidate.strip():
            return candidate.strip()
    try:
        return key_file.read_text().strip() or None
    except OSError:
        return None


# --- drawing ------------------------------------------------------------------------


def _supports_unicode(out: TextIO) -> bool:
    try:
        ("█" + _EIGHTHS + "…").encode(getattr(out, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _terminal_width() -> int:
    return shutil.get_terminal_size(fallback=(80, 24)).columns


class Display:
    """Draws snapshots: on a terminal one line redrawn in place (at most 10 a second);
    elsewhere one plain line per update, at most `plain_interval` apart (the newest
    state wins; a held-back update is drawn when its turn comes)."""

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        *,
        tty: bool,
        width: Callable[[], int] = _terminal_width,
        unicode: bool | None = None,
        plain_interval: float = 0.5,
        tty_interval: float = 0.1,
    ) -> None:
        self.out, self.err, self.tty, self.width = out, err, tty, width
        self.unicode = _supports_unicode(out) if unicode is None else unicode
        self.interval = tty_interval if tty else plain_interval
        self.snap: Snapshot | None = None
        self.note = ""
        self._dirty = False
        self._drawn_at = -math.inf
        self._last_text = ""
        self._line_open = False
        self._line_len = 0

    def show(self, snap: Snapshot) -> None:
        self.snap = snap
        self._dirty = True

    def set_note(self, note: str) -> None:
        """A remark at the end of the terminal line (reconnecting, settling)."""
        if note != self.note:
            self.note = note
            self._dirty = self._dirty or self.tty

    def due_in(self, now: float) -> float | None:
        """Seconds until a held-back draw is due; None when nothing waits."""
        if not self._dirty or self.snap is None:
            return None
        return max(0.0, self._drawn_at + self.interval - now)

    def flush(self, now: float, *, force: bool = False) -> None:
        if not self._dirty or self.snap is None:
            return
        if not force and now - self._drawn_at < self.interval:
            return
        self._dirty, self._drawn_at = False, now
        if self.tty:
            line = render_line(self.snap, self.width(), unicode=self.unicode, note=self.note)
            # Blank out what is left of a longer line, but stop there: the cursor stays
            # right after the text, so a ^C echo does not wrap.
            self.out.write("\r" + line.ljust(self._line_len if self._line_open else 0))
            self._line_open, self._line_len = True, len(line)
        else:
            text = render_plain(self.snap)
            if text == self._last_text:
                return
            self._last_text = text
            self.out.write(text + "\n")
        self.out.flush()

    def message(self, text: str) -> None:
        """A line of its own on stderr, without tearing the progress line."""
        self._end_line()
        self.err.write(text + "\n")
        self.err.flush()
        if self.tty and self.snap is not None:
            self._dirty = True
            self.flush(self._drawn_at, force=True)

    def finish(self, snap: Snapshot) -> None:
        self.show(snap)
        self.set_note("")
        self.flush(math.inf, force=True)
        self._end_line()
        self.out.write(render_summary(snap) + "\n")
        self.out.flush()

    def close(self) -> None:
        self._end_line()

    def _end_line(self) -> None:
        if self._line_open:
            self.out.write("\n")
            self.out.flush()
            self._line_open = False


# --- the protocol -------------------------------------------------------------------


class WatchError(Exception):
    """Ends the watch with exit status 1 and this message."""


class _Dropped(Exception):
    """The connection failed or ended; worth another try once the watch is running."""


def _describe_errors(errors: Any, campaign_id: str) -> str:
    items = errors if isinstance(errors, list) else [errors] if errors else []
    codes = [((e.get("extensions") or {}).get("code") if isinstance(e, dict) else None) for e in items]
    messages = [str(e.get("message")) if isinstance(e, dict) else str(e) for e in items]
    if "NOT_FOUND" in codes:
        return f"campaign {campaign_id!r} not found (check the id, and that it belongs to this API key's workspace)"
    if "UNAUTHENTICATED" in codes or "FORBIDDEN" in codes:
        return f"not allowed: {'; '.join(messages)}"
    return "the server refused the subscription: " + ("; ".join(messages) or "no reason given")


class Watcher:
    """Subscribes, feeds the display, and returns the settled final snapshot."""

    def __init__(
        self,
        url: str,
        key: str,
        campaign_id: str,
        display: Display,
        *,
        settle: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        open_timeout: float = 10.0,
        ack_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.5, 5.0),
        give_up_after: float = 300.0,
    ) -> None:
        self.url, self.key, self.campaign_id, self.display = url, key, campaign_id, display
        self.settle, self.clock = settle, clock
        self.open_timeout, self.ack_timeout = open_timeout, ack_timeout
        self.backoff, self.give_up_after = backoff, give_up_after
        self.last: Snapshot | None = None
        self.changed_at = 0.0
        self.connections = 0
        self._session_snapshots = 0
        self._outage = False
        self._next_id = 0

    async def run(self) -> Snapshot:
        attempt = 0
        down_since: float | None = None
        while True:
            try:
                return await self._session()
            except _Dropped as exc:
                if self.last is None:
                    raise WatchError(f"cannot connect to {self.url}: {exc}") from None
                now = self.clock()
                if self._session_snapshots or down_since is None:  # a new outage
                    first, attempt, down_since = True, 0, now
                else:
                    first = False
                if now - down_since > self.give_up_after:
                    raise WatchError(
                        f"lost the connection to {self.url} and could not get it back "
                        f"in {self.give_up_after:.0f}s: {exc}"
                    ) from None
                delay = min(self.backoff[1], self.backoff[0] * 2**attempt) * random.uniform(0.8, 1.2)
                attempt += 1
                await self._wait_to_reconnect(delay, str(exc), first)

    async def _wait_to_reconnect(self, delay: float, reason: str, first: bool) -> None:
        """Tells the loss once (on a terminal; each failed try in a log), then counts down."""
        if first:
            self.display.message(f"campaigns watch: connection lost ({reason}); reconnecting in {delay:.1f}s")
        elif not self.display.tty:
            self.display.message(f"campaigns watch: reconnecting failed ({reason}); next try in {delay:.1f}s")
        self._outage = True
        until = self.clock() + delay
        while (left := until - self.clock()) > 0:
            self.display.set_note(f"reconnecting in {math.ceil(left)}s")
            self.display.flush(self.clock())
            await asyncio.sleep(min(left, 0.5))
        self.display.set_note("reconnecting")
        self.display.flush(self.clock())

    async def _session(self) -> Snapshot:
        self._session_snapshots = 0
        try:
            async with connect(
                self.url, subprotocols=[PROTOCOL], open_timeout=self.open_timeout, close_timeout=2
            ) as ws:
                if ws.subprotocol != PROTOCOL:
                    raise WatchError(f"{self.url} does not speak graphql-transport-ws")
                await ws.send(
                    json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {self.key}"}})
                )
                await self._await_ack(ws)
                self.connections += 1
                self._next_id += 1
                sub_id = str(self._next_id)
                payload = {"query": QUERY, "variables": {"id": self.campaign_id}, "operationName": "Watch"}
                await ws.send(json.dumps({"id": sub_id, "type": "subscribe", "payload": payload}))
                final = await self._stream(ws, sub_id)
                with contextlib.suppress(ConnectionClosed):  # done either way
                    await ws.send(json.dumps({"id": sub_id, "type": "complete"}))
                return final
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            closed = f"{code} {exc.rcvd.reason}".strip() if exc.rcvd is not None else ""
            if code in AUTH_CLOSE_CODES:
                raise WatchError(f"authentication failed: the server refused the API key (close {closed})") from None
            if code is not None and 4400 <= code < 4500:
                raise WatchError(f"the server closed the connection (close {closed})") from None
            raise _Dropped(f"connection closed ({closed})" if closed else "connection lost") from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 401:
                raise WatchError("authentication failed: HTTP 401") from None
            raise _Dropped(
                f"the server refused the WebSocket upgrade (HTTP {status}); is this the /graphql endpoint?"
            ) from None
        except InvalidURI as exc:
            raise WatchError(str(exc)) from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise _Dropped(str(exc) or type(exc).__name__) from None

    async def _await_ack(self, ws: ClientConnection) -> None:
        deadline = self.clock() + self.ack_timeout
        while True:
            left = deadline - self.clock()
            if left <= 0:
                raise _Dropped("no connection_ack from the server")
            try:
                message = _decode(await asyncio.wait_for(ws.recv(), left))
            except TimeoutError:
                continue
            kind = message.get("type")
            if kind == "connection_ack":
                return
            if kind == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif kind == "error":
                raise WatchError(_describe_errors(message.get("payload"), self.campaign_id))

    async def _stream(self, ws: ClientConnection, sub_id: str) -> Snapshot:
        while True:
            now = self.clock()
            if self._session_snapshots and self.last is not None and self.last.terminal:
                left = self.changed_at + self.settle - now
                if left <= 0:
                    return self.last
                self.display.set_note(f"settling {math.ceil(left)}s")
            self.display.flush(now)
            timeout = 1.0
            due = self.display.due_in(now)
            if due is not None:
                timeout = min(timeout, due)
            if self._session_snapshots and self.last is not None and self.last.terminal:
                timeout = min(timeout, max(self.changed_at + self.settle - now, 0.0))
            try:
                message = _decode(await asyncio.wait_for(ws.recv(), max(timeout, 0.01)))
            except TimeoutError:
                continue
            kind = message.get("type")
            if kind == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif message.get("id") != sub_id:
                continue  # a pong, or something for another id
            elif kind == "next":
                self._on_next(message.get("payload") or {})
            elif kind == "error":
                raise WatchError(_describe_errors(message.get("payload"), self.campaign_id))
            elif kind == "complete":
                raise _Dropped("the server ended the subscription")

    def _on_next(self, payload: Mapping[str, Any]) -> None:
        progress = (payload.get("data") or {}).get("campaignProgress")
        if not progress:
            raise WatchError(_describe_errors(payload.get("errors"), self.campaign_id))
        snap = Snapshot.from_payload(progress)
        if self.last is None or snap.numbers() != self.last.numbers():
            self.changed_at = self.clock()
        self.last = snap
        self._session_snapshots += 1
        if self._outage:
            self._outage = False
            self.display.message("campaigns watch: reconnected")
        self.display.set_note("")
        self.display.show(snap)


def _decode(raw: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(raw)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


# --- the command --------------------------------------------------------------------


def main(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run `campaigns watch`; returns the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    key = resolve_key(args.key, os.environ)
    if key is None:
        where = f"pass --key, set {KEY_ENV}, or run where `campaigns dev` wrote {DEV_KEY_FILE}"
        err.write(f"campaigns watch: no API key: {where}\n")
        return 1
    try:
        url = ws_url(args.url)
    except ValueError as exc:
        err.write(f"campaigns watch: {exc}\n")
        return 1
    if args.settle < 0:
        err.write("campaigns watch: --settle must be 0 or more seconds\n")
        return 1
    display = Display(out, err, tty=out.isatty())
    watcher = Watcher(url, key, args.id, display, settle=args.settle)
    try:
        final = asyncio.run(watcher.run())
    except WatchError as exc:
        display.close()
        err.write(f"campaigns watch: {exc}\n")
        return 1
    except KeyboardInterrupt:
        display.close()
        err.write("campaigns watch: interrupted\n")
        return 130
    except BrokenPipeError:  # `campaigns watch ID | head`: the reader left
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    display.finish(final)
    return 0
