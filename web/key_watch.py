"""Open WebSockets outlive the request that authenticated them: this closes those of a
key revoked since (code 4403, Forbidden, as graphql-transport-ws has it; the legacy
protocol gets the same close), in every API process within auth.REVOCATION_S."""

from __future__ import annotations

import asyncio
import logging
import weakref
from contextlib import suppress

from starlette.websockets import WebSocket, WebSocketState

from runtime.background import Background
from services.auth import WATCH_EVERY_S, principal_of

log = logging.getLogger("campaigns.keys")

#: graphql-transport-ws's Forbidden
REVOKED_CLOSE_CODE = 4403


class KeyWatch:
    """WebSockets by the digest of the key they authenticated with."""

    def __init__(self, every: float = WATCH_EVERY_S) -> None:
        self.every = every
        self._sockets: dict[str, weakref.WeakSet[WebSocket]] = {}
        self._background = Background("key-watch", self._run, log)

    def add(self, digest: str, websocket: WebSocket) -> None:
        self._sockets.setdefault(digest, weakref.WeakSet()).add(websocket)

    async def start(self) -> None:
        self._background.start()

    async def close(self) -> None:
        await self._background.stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.check()
            except Exception:
                log.exception("checking the keys of open WebSockets failed")

    async def check(self) -> None:
        """One pass: close the sockets of revoked keys. One lookup per distinct key
        (cached), however many sockets share it; the sockets are walked only for a
        revoked key (10,000 dashboards on one key made walking them every pass a few
        percent of a core). A socket that ended leaves its set when it is freed."""
        for digest, sockets in list(self._sockets.items()):
            if not sockets:
                del self._sockets[digest]
                continue
            try:
                principal = await principal_of(digest)
            except Exception as exc:  # the database is away: keep them, look again
                log.warning("could not check an open WebSocket's key (%s)", exc)
                continue
            if principal is not None:
                continue
            live = [ws for ws in sockets if _open(ws)]
            del self._sockets[digest]
            for ws in live:
                with suppress(Exception):  # it may be closing on its own meanwhile
                    await ws.close(REVOKED_CLOSE_CODE, "The API key was revoked.")


def _open(ws: WebSocket) -> bool:
    gone = WebSocketState.DISCONNECTED
    return ws.client_state is not gone and ws.application_state is not gone
