"""Minimal GraphQL-over-WebSocket clients for tests: graphql-transport-ws and the
legacy graphql-ws (subscriptions-transport-ws), over a real socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"


class Rejected(Exception):
    """The server refused the connection (close code and reason)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code


class Session:
    def __init__(self, ws: ClientConnection, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol
        self._ids = 0

    async def subscribe(self, query: str, **variables: Any) -> str:
        self._ids += 1
        op = str(self._ids)
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        await self.ws.send(json.dumps({"id": op, "type": kind, "payload": {"query": query, "variables": variables}}))
        return op

    async def next(self, timeout: float = 10) -> dict[str, Any]:
        """The next data/error message of any operation (answers pings)."""
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            kind = message.get("type")
            if kind == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            if kind in ("ka", "pong"):
                continue
            return message

    async def data(self, timeout: float = 10) -> dict[str, Any]:
        message = await self.next(timeout)
        assert message["type"] in ("next", "data"), message
        payload = message["payload"]
        assert not payload.get("errors"), payload
        return payload["data"]


@asynccontextmanager
async def connect(url: str, key: str | None, protocol: str = TRANSPORT_WS) -> AsyncIterator[Session]:
    ws_url = url.replace("http://", "ws://").replace("https://", "wss://") + "/graphql"
    async with websockets.connect(ws_url, subprotocols=[protocol], compression=None) as ws:  # type: ignore[list-item]
        payload = {"Authorization": f"Bearer {key}"} if key else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        try:
            while True:
                ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if ack["type"] == "ka":
                    continue
                break
        except websockets.ConnectionClosed as closed:
            raise Rejected(closed.rcvd.code if closed.rcvd else None, closed.rcvd.reason if closed.rcvd else "") from None
        if ack["type"] != "connection_ack":
            raise Rejected(None, json.dumps(ack))
        yield Session(ws, protocol)
