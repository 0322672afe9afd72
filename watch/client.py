"""A GraphQL over WebSocket client (graphql-transport-ws) on the `websockets` library.

`Session.open(url, key)` connects, sends the API key in `connection_init` and waits for
`connection_ack`; the session then subscribes, receives (answering pings) and
completes. This is the project's one such client: `campaigns watch` uses it, and so do
the tests (`tests/wsclient.py`, which also speaks the legacy graphql-ws protocol by
renaming message types: the hooks are `PROTOCOL`, `SUBSCRIBE`, `COMPLETE` and
`SKIPPED`). `bench/fanout.py` keeps a leaner one of its own, for 10,000 sockets.

Errors are the transport's (`websockets.exceptions`, `OSError`, `TimeoutError`) plus
`Rejected`, for a server that refuses the connection before acknowledging it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")


def ws_url(url: str) -> str:
    """http://host:8000 → ws://host:8000/graphql; https → wss; a path is kept."""
    parts = urlsplit(url.strip() if "://" in url else f"http://{url.strip()}")
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ValueError(f"not an http(s) or ws(s) URL: {url!r}")
    path = parts.path.rstrip("/") or "/graphql"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


class Rejected(Exception):
    """The server refused the connection before acknowledging it: it closed the socket
    (`code` and `reason` of its close frame), answered `connection_init` with another
    message than `connection_ack` (`message`, e.g. graphql-ws's `connection_error`), or
    does not speak the protocol (neither `code` nor `message`)."""

    def __init__(self, code: int | None, reason: str, message: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code, self.reason, self.message = code, reason, message


class Session:
    """One connection past its handshake. Operation ids are "1", "2", … per connection."""

    PROTOCOL: ClassVar[Subprotocol] = PROTOCOL
    SUBSCRIBE: ClassVar[str] = "subscribe"
    COMPLETE: ClassVar[str] = "complete"
    SKIPPED: ClassVar[frozenset[str]] = frozenset({"pong"})  # received and dropped

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = 0

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        url: str,
        key: str | None,
        *,
        open_timeout: float = 10.0,
        ack_timeout: float = 10.0,
        close_timeout: float = 10.0,
        compression: str | None = "deflate",
    ) -> AsyncIterator[Self]:
        """Connect to the ws(s):// `url` with `key` as `Authorization: Bearer` in
        `connection_init` (an empty payload without one). TimeoutError when the socket
        does not open in `open_timeout` or no `connection_ack` comes in `ack_timeout`."""
        async with connect(
            url,
            subprotocols=[cls.PROTOCOL],
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            compression=compression,
        ) as ws:
            session = cls(ws)
            try:
                async with asyncio.timeout(ack_timeout):
                    await session._handshake(url, key)
            except TimeoutError:
                raise TimeoutError("no connection_ack from the server") from None
            yield session

    async def _handshake(self, url: str, key: str | None) -> None:
        if self.ws.subprotocol != self.PROTOCOL:
            raise Rejected(None, f"{url} does not speak {self.PROTOCOL}")
        payload = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            await self.ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            message = await self.receive()
        except ConnectionClosed as closed:
            if closed.rcvd is None:  # no close frame: the connection broke, nobody refused
                raise
            raise Rejected(closed.rcvd.code, closed.rcvd.reason) from None
        if message.get("type") != "connection_ack":
            raise Rejected(None, json.dumps(message), message)

    async def subscribe(
        self, query: str, variables: Mapping[str, Any] | None = None, *, operation_name: str | None = None
    ) -> str:
        """Starts an operation; returns its id, which its messages carry."""
        self._ids += 1
        op = str(self._ids)
        payload: dict[str, Any] = {"query": query, "variables": dict(variables or {})}
        if operation_name is not None:
            payload["operationName"] = operation_name
        await self.ws.send(json.dumps({"id": op, "type": self.SUBSCRIBE, "payload": payload}))
        return op

    async def complete(self, op: str) -> None:
        """Ends the operation `op` from this side."""
        await self.ws.send(json.dumps({"id": op, "type": self.COMPLETE}))

    async def receive(self) -> dict[str, Any]:
        """The next message of any operation, but pings (answered with a pong), `SKIPPED`
        kinds and frames that are not a JSON object; ConnectionClosed when the connection
        ends. Safe to cancel: bound it with `asyncio.timeout`."""
        while True:
            message = _decode(await self.ws.recv())
            if message is None:
                continue
            kind = message.get("type")
            if kind == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
            elif kind not in self.SKIPPED:
                return message


def _decode(raw: str | bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None
