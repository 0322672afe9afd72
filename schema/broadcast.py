"""Render each progress snapshot once and write the same bytes to every subscriber.

graphql-core executes a subscription's selection set for each subscriber on each event,
and strawberry then wakes each subscriber's task, encodes JSON and writes it: with
5,000 dashboards on one campaign that was most of the API's CPU (bench/fanout.py).

Instead, once its first snapshot (read from the database) has gone out the usual way, a
`campaignProgress` subscription joins the *group* of subscriptions asking exactly the
same thing: same campaign, query text, operation name and variables. One task per
group takes each snapshot from the hub's latest-wins slot, executes the document once,
encodes it once, and writes the protocol's frame to each member's socket.

Invariants:
- Members of a group get identical payloads: the document is executed on a flat
  snapshot, with no per-subscriber context (no database read, no principal).
- A member gets nothing older than its first snapshot, and nothing once its
  operation has ended (complete/stop, or the socket closed).
- Latest wins per member: while a write to a slow socket waits, a newer frame
  replaces the one queued behind it. Writes start eagerly in the group's task
  (live/eager.py), and only a write that must wait gets a task of its own, so a
  slow or dead socket never holds up the others.
- Latest wins per round too: the group writes CHUNK members at a time and lets the
  event loop run in between, so the hub reads a newer event within a chunk, not after
  a whole round (10,000 sockets take about 0.3 s on one core); the rest of the round
  gets the newer frame, then the members written before it get it too. A frame is
  then at most about one event interval old when it is written, however many
  sockets there are (bench/fanout.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import ExitStack
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import parse
from graphql.execution import execute_subscription_event

from live.eager import start_eagerly
from live.hub import LiveHub, ProgressUpdate, Slot
from runtime.background import Background

log = logging.getLogger("campaigns.broadcast")

#: members written between two turns of the event loop (about 6 ms of writes)
CHUNK = 200

#: the frame for a result that failed to render: the real error is in the log
_FAILED = json.dumps({"data": None, "errors": [{"message": "Unexpected error.", "extensions": {"code": "INTERNAL"}}]})


@dataclass(slots=True)
class StreamTarget:
    """Where one subscription operation's results go. The WebSocket protocol handlers
    (schema/ws_handlers.py) set it for the operation's task; resolvers read it, and
    hand the operation over to a group by setting `handoff`."""

    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    #: the protocol's message up to its payload, e.g. '{"type":"next","id":"1","payload":'
    frame_start: str
    send_text: Callable[[str], Coroutine[Any, Any, None]]
    #: False once the operation was completed/stopped by the client or ended; None
    #: where the member is made to leave the moment its operation ends
    is_open: Callable[[], bool] | None
    #: set by the resolver just before it yields its first result: the member that
    #: writes every later one, and the time of that first snapshot. From then on the
    #: protocol handler owns the member: it closes strawberry's stream once the first
    #: result is sent (its per-operation state is not needed any more), streams, and
    #: makes the member leave when the operation ends.
    handoff: tuple[Member, float] | None = None

    @property
    def group_key(self) -> tuple[str, str | None, str]:
        return self.query, self.operation_name, json.dumps(self.variables, sort_keys=True, default=str)


#: set in each WebSocket operation's own task, so it is seen by that operation only
CURRENT_STREAM: ContextVar[StreamTarget | None] = ContextVar("campaigns_stream", default=None)


class Member:
    """One subscription in a group: its socket, its latest-wins queue of one."""

    __slots__ = ("_leave", "closed", "pending", "ready", "shown", "target", "writing")

    def __init__(self, target: StreamTarget, leave: Callable[[Member], None]) -> None:
        self.target = target
        self._leave = leave
        self.ready = False  # until its first snapshot has been sent
        #: the time of the newest snapshot it was given (its first one included): an
        #: update as old is stale, a newer one is what the group still owes it
        self.shown = 0.0
        self.closed = False
        self.pending: tuple[float, str] | None = None  # (snapshot time, payload JSON)
        self.writing: asyncio.Future[None] | None = None

    def offer(self, at: float, payload: str) -> None:
        if self.closed or at <= self.shown:
            return
        self.shown = at
        if not self.ready or self.writing is not None:
            self.pending = (at, payload)  # newer replaces older
        else:
            self._write(payload)

    def start(self, after: float) -> None:
        """Called once the first snapshot (taken at `after`) is sent: from then on the
        group writes this member's frames, until it leaves."""
        self.ready, self.shown = True, max(self.shown, after)
        pending, self.pending = self.pending, None
        if pending is not None and pending[0] > after:
            self._write(pending[1])

    async def stream(self, after: float) -> None:
        """`start`, then wait: returns only by cancellation (the operation ended)."""
        self.start(after)
        await asyncio.Future()

    def leave(self) -> None:
        """Stop receiving (idempotent); the last member to leave closes its group."""
        self.closed = True
        self._leave(self)

    def _write(self, payload: str) -> None:
        target = self.target
        if target.is_open is not None and not target.is_open():
            self.closed = True
            return
        try:
            self.writing = start_eagerly(target.send_text(f"{target.frame_start}{payload}}}"))
        except Exception:  # the socket is gone; its protocol handler ends the operation
            self.closed = True
            return
        if self.writing is not None:
            self.writing.add_done_callback(self._written)

    def _written(self, write: asyncio.Future[None]) -> None:
        self.writing = None
        if write.cancelled() or write.exception() is not None:
            self.closed = True
        elif self.pending is not None and not self.closed:
            payload, self.pending = self.pending[1], None
            self._write(payload)


class Group:
    """The members asking the same thing of one campaign, and the task writing to them."""

    def __init__(self, hub: LiveHub, campaign_id: int, render: Callable[[ProgressUpdate], str]) -> None:
        self.members: set[Member] = set()
        self.campaign_id = campaign_id
        self.render = render
        #: (time, payload) of the newest snapshot the group rendered: a member that
        #: joins is offered it, so one whose first snapshot is older still gets it
        self.latest: tuple[float, str] | None = None
        self._reads: dict[int, asyncio.Future[tuple[float, str] | None]] = {}
        self._exit = ExitStack()
        # Watch synchronously, before any member reads its first snapshot: no event
        # dispatched after that read can be missed.
        slot = self._exit.enter_context(hub.watch_campaign(campaign_id))
        self._writer = Background(f"broadcast-{campaign_id}", lambda: self._run(slot), log)
        self._writer.start()

    async def _run(self, slot: Slot[ProgressUpdate]) -> None:
        while True:
            snapshot = await slot.get()
            at, payload = self.latest = snapshot.event["at"], self.render(snapshot)
            # Until every member has the newest snapshot: a newer one read between two
            # chunks goes to the rest of the round, and then to those written before it.
            while behind := [m for m in self.members if m.shown < at and not m.closed]:
                for start in range(0, len(behind), CHUNK):
                    for member in behind[start : start + CHUNK]:
                        member.offer(at, payload)
                    await asyncio.sleep(0)  # the hub reads what Redis has meanwhile
                    if (newer := slot.take()) is not None:
                        at, payload = self.latest = newer.event["at"], self.render(newer)

    async def first(
        self, workspace_id: int, read: Callable[[], Awaitable[ProgressUpdate | None]]
    ) -> tuple[float, str] | None:
        """A joining member's first snapshot, rendered (None: not the workspace's
        campaign): ONE read for all the members of a workspace that ask while it is in
        flight, as thousands of dashboards do when they reconnect together. A member
        joins before it asks, and is offered every newer frame from then on and the
        group's latest when it joins, so a read shared with an earlier member leaves
        it no staler than a read of its own."""
        shared = self._reads.get(workspace_id)
        if shared is None:
            shared = self._reads[workspace_id] = asyncio.ensure_future(self._read(read))
            shared.add_done_callback(lambda done: self._read_done(workspace_id, done))
        return await asyncio.shield(shared)  # a member that leaves does not cancel the others' read

    async def _read(self, read: Callable[[], Awaitable[ProgressUpdate | None]]) -> tuple[float, str] | None:
        snapshot = await read()
        return None if snapshot is None else (snapshot.event["at"], self.render(snapshot))

    def _read_done(self, workspace_id: int, done: asyncio.Future[tuple[float, str] | None]) -> None:
        if self._reads.get(workspace_id) is done:
            del self._reads[workspace_id]
        if not done.cancelled():
            done.exception()  # retrieved: its waiters got it, or all left

    def close(self) -> None:
        # Called by the last member's synchronous leave(): the task ends at its next
        # await (it only waits on the slot), nobody needs to wait for it.
        self._writer.cancel()
        self._exit.close()


class Renderer:
    """Executes one subscription document on a snapshot, as graphql-core would for each
    subscriber, and encodes the result once."""

    def __init__(
        self, schema: strawberry.Schema, target: StreamTarget, view: Callable[[ProgressUpdate], object]
    ) -> None:
        executor = schema.execution_context_class.build(  # type: ignore[attr-defined]
            schema._schema,
            parse(target.query),
            raw_variable_values=target.variables,
            operation_name=target.operation_name,
        )
        if isinstance(executor, list):  # strawberry validated the same text and variables
            raise ValueError(f"cannot execute the subscription: {executor}")
        self._executor, self._view = executor, view

    def __call__(self, snapshot: ProgressUpdate) -> str:
        try:
            result = execute_subscription_event(self._executor.build_per_event_executor(self._view(snapshot)))
            if isinstance(result, Awaitable):  # flat snapshots resolve synchronously
                raise TypeError("a subscription payload needed an async resolver")
            if result.errors:
                raise result.errors[0]
        except Exception:
            log.exception("rendering a progress update failed")
            return _FAILED
        return json.dumps({"data": result.data}, separators=(",", ":"))


class Broadcaster:
    """The process's groups of `campaignProgress` subscriptions (one per distinct ask)."""

    def __init__(self, hub: LiveHub, schema: strawberry.Schema) -> None:
        self.hub = hub
        self.schema = schema
        self._groups: dict[tuple[int, tuple[str, str | None, str]], Group] = {}
        #: the same groups by what they ask alone (the ask names the campaign)
        self._asks: dict[tuple[str, str | None, str], Group] = {}

    @property
    def groups(self) -> int:
        return len(self._groups)

    def add(self, campaign_id: int, target: StreamTarget, view: Callable[[ProgressUpdate], object]) -> Member:
        """A new member of the group asking what `target` asks. Add it before reading
        the first snapshot: updates published meanwhile are kept (newest only) and sent
        after it if they are newer. Whoever holds the member must `leave()` it."""
        key = (campaign_id, target.group_key)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = self._asks[key[1]] = Group(
                self.hub, campaign_id, Renderer(self.schema, target, view)
            )
        return self._member(key, group, target)

    def join(self, target: StreamTarget) -> tuple[Member, Group] | None:
        """A new member of the group asking exactly what `target` asks, if there is
        one: the ask was parsed, validated, costed and executed for its first member
        (schema/subscriptions.py's fast path). None otherwise."""
        ask = target.group_key
        group = self._asks.get(ask)
        if group is None:
            return None
        return self._member((group.campaign_id, ask), group, target), group

    def _member(self, key: tuple[int, tuple[str, str | None, str]], group: Group, target: StreamTarget) -> Member:
        def leave(member: Member) -> None:
            group.members.discard(member)
            if not group.members and self._groups.get(key) is group:
                del self._groups[key]
                del self._asks[key[1]]
                group.close()

        member = Member(target, leave)
        group.members.add(member)
        if group.latest is not None:
            member.offer(*group.latest)  # sent after its first snapshot if newer than it
        return member
