"""The subscription: `Watcher` follows one campaign's `campaignProgress` over the shared
client, feeds the display, reconnects with backoff after a drop (a new subscription
starts with a fresh snapshot, so nothing is missed), and returns the settled end."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from watch.client import Rejected, Session
from watch.display import Display
from watch.render import waiting_note
from watch.snapshot import Snapshot

QUERY = """subscription Watch($id: ID!) {
  campaignProgress(id: $id) {
    campaignId status sendRate at
    stats { total pending sent delivered read replied failed cancelled progress deliveryRate readRate failureRate }
  }
}"""

# campaignProgress has no statusReason: why a PROCESSING campaign waits is asked apart,
# over the same connection, once its pending count has stood still a while.
REASON_QUERY = """query WatchReason($id: ID!) { campaign(id: $id) { status statusReason nextSendAt } }"""

# Close codes of graphql-transport-ws that mean "your credentials", not "try again".
AUTH_CLOSE_CODES = frozenset({4401, 4403})


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


def _closed(code: int, reason: str) -> Exception:
    """What a close frame means here: the credentials, another refusal, or try again."""
    closed = f"{code} {reason}".strip()
    if code in AUTH_CLOSE_CODES:
        return WatchError(f"authentication failed: the server refused the API key (close {closed})")
    if 4400 <= code < 4500:
        return WatchError(f"the server closed the connection (close {closed})")
    return _Dropped(f"connection closed ({closed})")


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
        stall: float = 3.0,
        reason_every: float = 30.0,
    ) -> None:
        """`stall`: seconds a PROCESSING campaign's status and pending count stand still
        before its statusReason is asked (why it waits); `reason_every`: how often it is
        asked again while they still stand still."""
        self.url, self.key, self.campaign_id, self.display = url, key, campaign_id, display
        self.settle, self.clock = settle, clock
        self.open_timeout, self.ack_timeout = open_timeout, ack_timeout
        self.backoff, self.give_up_after = backoff, give_up_after
        self.last: Snapshot | None = None
        self.changed_at = 0.0
        self.connections = 0
        self._session_snapshots = 0
        self._outage = False
        self.stall, self.reason_every = stall, reason_every
        self.waiting = ""  # the note while the campaign waits (render.waiting_note)
        self._moved_at = 0.0  # when the status or the pending count last changed
        self._reason_op: str | None = None  # the statusReason query in flight, on this connection
        self._reason_asked_at = -math.inf

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
        self._reason_op = None  # an answer in flight died with the last connection
        try:
            async with Session.open(
                self.url, self.key, open_timeout=self.open_timeout, ack_timeout=self.ack_timeout, close_timeout=2
            ) as session:
                self.connections += 1
                sub_id = await session.subscribe(QUERY, {"id": self.campaign_id}, operation_name="Watch")
                final = await self._stream(session, sub_id)
                with contextlib.suppress(ConnectionClosed):  # done either way
                    await session.complete(sub_id)
                return final
        except Rejected as exc:
            if exc.code is not None:
                raise _closed(exc.code, exc.reason) from None
            if exc.message is None:  # not a graphql-transport-ws endpoint
                raise WatchError(exc.reason) from None
            if exc.message.get("type") == "error":
                raise WatchError(_describe_errors(exc.message.get("payload"), self.campaign_id)) from None
            raise WatchError(f"the server refused the connection: {exc.reason}") from None
        except ConnectionClosed as exc:
            if exc.rcvd is None:  # no close frame: the network went away
                raise _Dropped("connection lost") from None
            raise _closed(exc.rcvd.code, exc.rcvd.reason) from None
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

    async def _stream(self, session: Session, sub_id: str) -> Snapshot:
        while True:
            now = self.clock()
            if self._session_snapshots and self.last is not None and self.last.terminal:
                left = self.changed_at + self.settle - now
                if left <= 0:
                    return self.last
                self.display.set_note(f"settling {math.ceil(left)}s")
            if self._reason_due(now):
                self._reason_asked_at = now
                self._reason_op = await session.subscribe(
                    REASON_QUERY, {"id": self.campaign_id}, operation_name="WatchReason"
                )
            self.display.flush(now)
            timeout = 1.0
            due = self.display.due_in(now)
            if due is not None:
                timeout = min(timeout, due)
            if self._session_snapshots and self.last is not None and self.last.terminal:
                timeout = min(timeout, max(self.changed_at + self.settle - now, 0.0))
            if self.last is not None and self.last.status == "PROCESSING" and now < self._moved_at + self.stall:
                timeout = min(timeout, self._moved_at + self.stall - now)  # ask why it waits on time
            try:
                async with asyncio.timeout(max(timeout, 0.01)):
                    message = await session.receive()
            except TimeoutError:
                continue
            if self._reason_op is not None and message.get("id") == self._reason_op:
                self._on_reason(message)
                continue
            if message.get("id") != sub_id:
                continue  # something for another id
            kind = message.get("type")
            if kind == "next":
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
        if self.last is None or (snap.status, snap.pending) != (self.last.status, self.last.pending):
            self._moved_at = self.clock()
            self.waiting = ""  # messages go out (or the status changed): no longer waiting
        self.last = snap
        self._session_snapshots += 1
        if self._outage:
            self._outage = False
            self.display.message("campaigns watch: reconnected")
        self.display.set_note(self.waiting)
        self.display.show(snap)

    def _reason_due(self, now: float) -> bool:
        """Whether to ask why the campaign waits: PROCESSING, nothing asked in flight, its
        pending count still for `stall` seconds, and not asked since (or for `reason_every`)."""
        if self.last is None or self.last.status != "PROCESSING":
            return False
        if self._reason_op is not None and now - self._reason_asked_at < self.reason_every:
            return False  # in flight (past reason_every it is taken for lost, and asked again)
        stalled_since = self._moved_at + self.stall
        if now < stalled_since:
            return False
        return self._reason_asked_at < stalled_since or now - self._reason_asked_at >= self.reason_every

    def _on_reason(self, message: Mapping[str, Any]) -> None:
        """The statusReason query's answer. An error, or an answer asked before the
        numbers last moved, leaves the note as it is: the watch goes on without it."""
        kind = message.get("type")
        if kind in ("complete", "error"):
            self._reason_op = None
        if kind != "next" or self._reason_asked_at < self._moved_at:
            return
        campaign = ((message.get("payload") or {}).get("data") or {}).get("campaign") or {}
        if campaign.get("status") != "PROCESSING" or self.last is None or self.last.status != "PROCESSING":
            return
        note = waiting_note(campaign.get("statusReason")) if campaign.get("nextSendAt") else ""
        if note != self.waiting:
            self.waiting = note
            self.display.set_note(note)
            if note and not self.display.tty:  # a log has no note: a line of its own
                self.display.message(f"campaigns watch: {note}")
