"""The simulator as its own Starlette app: the Cloud API send route plus `/_simulator/*`.

`create_simulator_app(config)` returns an ASGI app to serve with uvicorn; its lifespan
starts and stops the webhook sender. The Simulator is `app.state.simulator`, so an
in-process test or benchmark reads `app.state.simulator.ledger` directly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from simulator.config import SimulatorConfig
from simulator.engine import Simulator


def _json(data: object, status: int = 200) -> Response:
    return Response(json.dumps(data, separators=(",", ":")), status, media_type="application/json")


class SendEndpoint:
    """`POST /{version}/{phone_number_id}/messages` as a bare ASGI app: the hot path, so it
    skips Starlette's Request/Response objects (about a third of the per-request cost)."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorization = idempotency_key = None
        for name, value in scope["headers"]:  # ASGI header names are lower-case bytes
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"idempotency-key":
                idempotency_key = value.decode("latin-1")
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        answer = await self.simulator.handle_send(
            scope["path_params"]["phone_number_id"], authorization, idempotency_key, body
        )
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer.body))]
        if answer.headers:
            headers.extend((k.lower().encode(), v.encode()) for k, v in answer.headers.items())
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        if answer.lost:
            # Returning before the body makes uvicorn close the connection: the client
            # has a status line and no answer, as when a network drops mid-response.
            return
        await send({"type": "http.response.body", "body": answer.body})


class FastSend:
    """Sends go straight to their endpoint, skipping the router's regex walk and the
    exception middleware: several thousand requests/s on one core is the point. Anything
    else goes down the normal Starlette stack."""

    def __init__(self, app: ASGIApp, endpoint: SendEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root + "/"):
                # Mounted under a prefix (`campaigns dev` mounts it at /simulator): Starlette
                # keeps the full path in scope["path"] and the prefix in root_path.
                path = path[len(root) :]
            parts = path.split("/")
            # "/{version}/{phone_number_id}/messages" -> ["", version, id, "messages"]
            if len(parts) == 4 and parts[3] == "messages" and parts[1] and parts[2] and parts[1] != "_simulator":
                scope["path_params"] = {"version": parts[1], "phone_number_id": parts[2]}
                await self.endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _QuietLostAnswers(logging.Filter):
    """uvicorn logs an ERROR for every response left incomplete: here that is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


def create_simulator_app(config: SimulatorConfig | None = None) -> Starlette:
    """A WhatsApp Cloud API simulator; `None` uses the defaults (`SimulatorConfig()`)."""
    simulator = Simulator(config or SimulatorConfig())
    if simulator.config.lost_answer_probability > 0:
        logging.getLogger("uvicorn.error").addFilter(_QuietLostAnswers())

    async def ledger(request: Request) -> Response:
        return _json(simulator.ledger.to_json())

    async def messages(request: Request) -> Response:
        """Accepted sends, of one campaign (`?campaign=<id>`) or all; `offset`/`limit` page."""
        params = request.query_params
        try:
            campaign = int(params["campaign"]) if params.get("campaign") else None
            offset = int(params.get("offset", 0))
            limit = int(params["limit"]) if params.get("limit") else None
        except ValueError:
            return _json({"error": "campaign, offset and limit must be integers"}, 400)
        sends = simulator.ledger.sends(campaign)
        page = sends[offset : None if limit is None else offset + limit]
        return _json({"campaign": campaign, "count": len(sends), "messages": [s.to_json() for s in page]})

    async def reset(request: Request) -> Response:
        simulator.reset()
        return _json({"reset": True})

    async def health(request: Request) -> Response:
        return _json({"ok": True, "webhooks": simulator.webhooks.running})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await simulator.start()
        try:
            yield
        finally:
            await simulator.stop()

    endpoint = SendEndpoint(simulator)
    # "/_simulator/ledger/messages" also fits the send route's pattern. A Route of another
    # method only half-matches, and the router goes on to take the send route for it; a
    # Mount matches on the path alone, so every /_simulator path stays in its own router
    # (a wrong method is a 405, an unknown path a 404). The send route is normally
    # reached through FastSend.
    app = Starlette(
        routes=[
            Mount(
                "/_simulator",
                routes=[
                    Route("/ledger", ledger, methods=["GET"]),
                    Route("/ledger/messages", messages, methods=["GET"]),
                    Route("/reset", reset, methods=["POST"]),
                    Route("/health", health, methods=["GET"]),
                ],
            ),
            # Any version segment: clients pin different Graph API versions.
            Route("/{version}/{phone_number_id}/messages", endpoint, methods=["POST"]),
        ],
        middleware=[Middleware(FastSend, endpoint=endpoint)],
        lifespan=lifespan,
    )
    app.state.simulator = simulator
    return app
