"""The tests' GraphQL-over-WebSocket client: the project's own (`watch/client.py`, which
`campaigns watch` uses), with variables as keywords, `data()` for the next result, and
the legacy graphql-ws (subscriptions-transport-ws) besides graphql-transport-ws."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.typing import Subprotocol

from watch import client
from watch.client import Rejected, ws_url

TRANSPORT_WS: str = client.PROTOCOL
LEGACY_WS = "graphql-ws"

__all__ = ["LEGACY_WS", "TRANSPORT_WS", "Rejected", "Session", "connect"]


class LegacySession(client.Session):
    """graphql-ws: the same exchange under older names (`start`/`stop`, `data`), with
    `ka` keep-alives; a refused `connection_init` is a `connection_error` message."""

    PROTOCOL = Subprotocol(LEGACY_WS)
    SUBSCRIBE = "start"
    COMPLETE = "stop"
    SKIPPED = frozenset({"ka", "pong"})


class Session:
    def __init__(self, inner: client.Session) -> None:
        self.inner = inner
        self.ws = inner.ws
        self.protocol: str = inner.PROTOCOL

    async def subscribe(self, query: str, **variables: Any) -> str:
        return await self.inner.subscribe(query, variables)

    async def next(self, timeout: float = 10) -> dict[str, Any]:
        """The next data/error message of any operation (answers pings)."""
        async with asyncio.timeout(timeout):
            return await self.inner.receive()

    async def data(self, timeout: float = 10) -> dict[str, Any]:
        message = await self.next(timeout)
        assert message["type"] in ("next", "data"), message
        payload = message["payload"]
        assert not payload.get("errors"), payload
        return payload["data"]


@asynccontextmanager
async def connect(url: str, key: str | None, protocol: str = TRANSPORT_WS) -> AsyncIterator[Session]:
    """`url` is the service's http(s) base; `Rejected` when the server refuses the key."""
    kind = {TRANSPORT_WS: client.Session, LEGACY_WS: LegacySession}[protocol]
    async with kind.open(ws_url(url), key, compression=None) as inner:
        yield Session(inner)
