"""The simulator as its own Starlette app: the Cloud API routes plus `/_simulator/*`.

Cloud API: `POST /{version}/{phone_number_id}/messages` (send),
`GET /{version}/{phone_number_id}?fields=...` (read a number) and
`GET /{version}/{waba_id}/message_templates` (a WABA's templates). Control: `/_simulator/`
ledger (`?phone_number_id=` for one number's), ledger/messages, reset, health,
numbers (`GET` lists, `POST` registers one more, `GET`/`DELETE numbers/{id}`), templates
(simulator/template_routes.py: list, add, remove, change a status); and what
people do, posted to the receiver as Meta's webhooks, signed like the statuses:
`POST user_preferences` (a user stops or resumes marketing messages) and `POST inbound`
(a user writes a text message). `GET`/`POST clock`: the simulator's clock, which the
ledger, status timestamps and the messaging limit's moving 24 hours read; a test moves
it with `{"offset": seconds}` (ahead of the system clock).

`create_simulator_app(config)` returns an ASGI app to serve with uvicorn; its lifespan
starts and stops the webhook sender. The Simulator is `app.state.simulator`, so an
in-process test or benchmark reads `app.state.simulator.ledger` directly.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from simulator.config import SimulatorConfig
from simulator.engine import Simulator
from simulator.numbers import NumberConflict, PhoneNumber
from simulator.template_routes import control_routes, graph_listing

#: a user's WhatsApp id: a phone's digits
_WA_ID = re.compile(r"[1-9][0-9]{4,14}")


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


def create_simulator_app(config: SimulatorConfig | None = None, clock: Callable[[], float] = time.time) -> Starlette:
    """A WhatsApp Cloud API simulator; `None` uses the defaults (`SimulatorConfig()`).
    `clock` (Unix time) is the base of its clock, the system's unless a test gives one."""
    simulator = Simulator(config or SimulatorConfig(), clock)
    if simulator.config.lost_answer_probability > 0:
        logging.getLogger("uvicorn.error").addFilter(_QuietLostAnswers())

    def unknown_number(phone_number_id: str) -> Response | None:
        if simulator.numbers.get(phone_number_id) is None and phone_number_id not in simulator.ledger.numbers:
            return _json({"error": f"phone_number_id {phone_number_id} is not a number of this simulator"}, 404)
        return None

    async def ledger(request: Request) -> Response:
        """The whole truth, or one number's (`?phone_number_id=`)."""
        number = request.query_params.get("phone_number_id")
        if number is None:
            return _json(simulator.ledger.to_json())
        missing = unknown_number(number)
        if missing is not None:
            return missing
        own = {"phone_number_id": number} | simulator.ledger.of(number).to_json()
        return _json(own | {"messaging_limit": simulator.messaging_limit(number)})

    async def messages(request: Request) -> Response:
        """Accepted sends, of one campaign (`?campaign=<id>`) or all, of one number
        (`?phone_number_id=`) or all; `offset`/`limit` page."""
        params = request.query_params
        try:
            campaign = int(params["campaign"]) if params.get("campaign") else None
            offset = int(params.get("offset", 0))
            limit = int(params["limit"]) if params.get("limit") else None
        except ValueError:
            return _json({"error": "campaign, offset and limit must be integers"}, 400)
        number = params.get("phone_number_id") or None
        if number is not None and (missing := unknown_number(number)):
            return missing
        sends = simulator.ledger.sends(campaign, number)
        page = sends[offset : None if limit is None else offset + limit]
        return _json({"campaign": campaign, "count": len(sends), "messages": [s.to_json() for s in page]})

    async def numbers(request: Request) -> Response:
        """`GET`: every number served. `POST` a number's JSON (simulator/numbers.py:
        phone_number_id, waba_id, display_phone_number, access_token, and optionally
        verified_name, throughput, messaging_limit_tier, quality_rating): 201 when new,
        200 when the same number was there, 400 naming a bad field, 409 on a conflict."""
        if request.method == "GET":
            return _json({"numbers": [n.to_json() for n in simulator.numbers]})
        try:
            number = PhoneNumber.from_json(json.loads(await request.body()))
        except ValueError as exc:  # JSONDecodeError is one
            return _json({"error": str(exc)}, 400)
        try:
            created = simulator.register_number(number)
        except NumberConflict as exc:
            return _json({"error": str(exc)}, 409)
        return _json({"created": created, "number": number.to_json()}, 201 if created else 200)

    async def number(request: Request) -> Response:
        """`GET` one number; `DELETE` it (as when deleted on Meta; not the first one)."""
        phone_number_id = request.path_params["phone_number_id"]
        found = simulator.numbers.get(phone_number_id)
        if found is None:
            return _json({"error": f"phone_number_id {phone_number_id} is not a number of this simulator"}, 404)
        if request.method == "GET":
            return _json(found.to_json())
        try:
            simulator.remove_number(phone_number_id)
        except NumberConflict as exc:
            return _json({"error": str(exc)}, 409)
        return _json({"removed": phone_number_id})

    async def lookup(request: Request) -> Response:
        """`GET /{version}/{phone_number_id}`: the token as a Bearer header or, as Graph
        also takes it, an `access_token` query parameter."""
        authorization = request.headers.get("authorization")
        token = request.query_params.get("access_token")
        if token and not authorization:
            authorization = f"Bearer {token}"
        params = request.path_params
        answer = simulator.handle_lookup(
            params["object_id"], authorization, params["version"], request.query_params.get("fields")
        )
        return Response(answer.body, answer.status, media_type="application/json")

    async def _person(request: Request) -> tuple[dict[str, Any], PhoneNumber] | Response:
        """A people-control body: a JSON object naming a user (`wa_id` or `from`: a phone's
        digits) and optionally the business number (`phone_number_id`, default the first)."""
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _json({"error": "the body must be a JSON object"}, 400)
        if not isinstance(body, dict):
            return _json({"error": "the body must be a JSON object"}, 400)
        who = body.get("wa_id", body.get("from"))
        if not isinstance(who, str) or not _WA_ID.fullmatch(who.strip().lstrip("+")):
            return _json({"error": "wa_id must be a phone's digits (5 to 15)"}, 400)
        body["wa_id"] = who.strip().lstrip("+")
        pid = body.get("phone_number_id") or simulator.config.phone_number_id
        found = simulator.numbers.get(str(pid))
        if found is None:
            return _json({"error": f"phone_number_id {pid} is not a number of this simulator"}, 404)
        return body, found

    async def user_preferences(request: Request) -> Response:
        """`POST {wa_id, value: stop|resume, detail?, phone_number_id?, webhook?: true}`: the
        user stops or resumes marketing messages in WhatsApp. The ledger refuses marketing
        messages to a stopped user with 131050 from now on; unless `webhook` is false, a
        signed `user_preferences` webhook is posted to the receiver."""
        parsed = await _person(request)
        if isinstance(parsed, Response):
            return parsed
        body, number = parsed
        value = body.get("value")
        if value not in ("stop", "resume"):
            return _json({"error": "value must be stop or resume"}, 400)
        detail = body.get("detail")
        if detail is not None and not isinstance(detail, str):
            return _json({"error": "detail must be a string"}, 400)
        posted = simulator.set_marketing_preference(
            number, body["wa_id"], value, detail, post=body.get("webhook", True) is not False
        )
        stopped = body["wa_id"] in simulator.ledger.opted_out.get(number.waba_id, set())
        return _json({"wa_id": body["wa_id"], "opted_out": stopped, "posted": posted})

    async def inbound(request: Request) -> Response:
        """`POST {from, text, name?, phone_number_id?}`: the user writes `text` to the
        business number; a signed `messages` webhook carries it to the receiver."""
        parsed = await _person(request)
        if isinstance(parsed, Response):
            return parsed
        body, number = parsed
        text, name = body.get("text"), body.get("name", "Simulated User")
        if not isinstance(text, str) or not text or len(text) > 4096:
            return _json({"error": "text must be a string of 1 to 4096 characters"}, 400)
        if not isinstance(name, str):
            return _json({"error": "name must be a string"}, 400)
        message_id = simulator.post_inbound_text(number, body["wa_id"], text, name)
        if message_id is None:
            return _json({"error": "no webhook receiver is set"}, 409)
        return _json({"id": message_id, "posted": True})

    async def clock_route(request: Request) -> Response:
        """`GET`: the simulator's time and its offset. `POST {"offset": seconds}`: set how
        far ahead of its base clock it runs (a test crossing the messaging limit's 24
        hours); the answer is the same view."""
        if request.method == "POST":
            try:
                body = json.loads(await request.body())
            except ValueError:
                return _json({"error": "the body must be a JSON object"}, 400)
            offset = body.get("offset") if isinstance(body, dict) else None
            if isinstance(offset, bool) or not isinstance(offset, int | float) or not math.isfinite(offset):
                return _json({"error": "offset must be a number of seconds"}, 400)
            simulator.clock.offset = float(offset)
        return _json({"now": simulator.clock(), "offset": simulator.clock.offset})

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
                    Route("/user_preferences", user_preferences, methods=["POST"]),
                    Route("/inbound", inbound, methods=["POST"]),
                    Route("/health", health, methods=["GET"]),
                    Route("/clock", clock_route, methods=["GET", "POST"]),
                    Route("/numbers", numbers, methods=["GET", "POST"]),
                    Route("/numbers/{phone_number_id}", number, methods=["GET", "DELETE"]),
                    *control_routes(simulator),
                ],
            ),
            # Any version segment: clients pin different Graph API versions.
            Route("/{version}/{phone_number_id}/messages", endpoint, methods=["POST"]),
            graph_listing(simulator),
            Route("/{version}/{object_id}", lookup, methods=["GET"]),
        ],
        middleware=[Middleware(FastSend, endpoint=endpoint)],
        lifespan=lifespan,
    )
    app.state.simulator = simulator
    return app
