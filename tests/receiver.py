"""A webhook receiver for tests: a real HTTP server on loopback (uvicorn) that records
every POST and answers as the test scripts it: a status code, or hang until released."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.conftest import serve

#: an answer that never comes (until `release`): the dispatcher's timeout ends it
HANG = -1


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    url: str = ""
    #: answers in order; when empty, `default`
    script: list[int] = field(default_factory=list)
    default: int = 200
    #: decides first, from the request (None: the script decides)
    rule: Callable[[Received], int | None] | None = None
    received: list[Received] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(self, request: Received) -> int:
        ruled = self.rule(request) if self.rule is not None else None
        if ruled is not None:
            return ruled
        return self.script.pop(0) if self.script else self.default

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        """The events of every POST received (retries included), oldest first."""
        return [r.event for r in self.received if type_ is None or r.event["type"] == type_]

    def ids(self) -> list[str]:
        return [r.event["id"] for r in self.received]


@asynccontextmanager
async def receiver(**options: Any) -> AsyncIterator[Receiver]:
    """A Receiver on a free loopback port; `url` is its /hook endpoint."""
    state = Receiver(**options)

    async def hook(request: Request) -> Response:
        got = Received(dict(request.headers), await request.body(), time.monotonic())
        state.received.append(got)
        status = state.answer(got)
        if status == HANG:
            await state.released.wait()
            status = 200
        return PlainTextResponse("ok" if status < 300 else "no", status_code=status)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    async with serve(app) as base:
        state.url = f"{base}/hook"
        try:
            yield state
        finally:
            state.released.set()
