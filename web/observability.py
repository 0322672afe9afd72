"""Request ids, JSON logs and Prometheus metrics, as one pure-ASGI middleware.

Pure ASGI rather than BaseHTTPMiddleware: it adds no task per request and does not
buffer streamed bodies (the CSV export streams).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.request_ids import REQUEST_ID, current_request_id, new_request_id
from web.errors import HttpErrorCode, error_body

log = logging.getLogger("campaigns.http")

REQUESTS = Counter("campaigns_http_requests_total", "HTTP requests handled", ["method", "route", "status"])
LATENCY = Histogram(
    "campaigns_http_request_duration_seconds",
    "Time to the response's first byte",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def _route_label(path: str) -> str:
    """A bounded label: raw paths carry ids and would explode the series count."""
    if path.startswith("/campaigns/"):
        return "/campaigns/{id}/report.csv" if path.endswith(".csv") else "/campaigns/{id}/recipients"
    if path in ("/graphql", "/healthz", "/readyz", "/metrics", "/", "/webhooks/whatsapp"):
        return path
    return "other"


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming[:64] if incoming.isprintable() and incoming else new_request_id()
        token = REQUEST_ID.set(request_id)
        route = _route_label(scope["path"])
        began = time.perf_counter()
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode("latin-1"))]
                LATENCY.labels(route).observe(time.perf_counter() - began)
            await send(message)

        try:
            # A WebSocket's sends go straight through: they carry no status or headers,
            # and a broadcast makes tens of thousands of them a second.
            await self.app(scope, receive, send_wrapper if scope["type"] == "http" else send)
        except Exception:
            if scope["type"] != "http":
                raise
            # Answered and logged here, under the request id: Starlette's own 500 comes
            # from outside this middleware, without the id, and uvicorn logs it after
            # the id is reset, so a user's report would lead nowhere.
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if not started:
                body = error_body(f"Unexpected error (request id {request_id}).", HttpErrorCode.INTERNAL)
                await send_wrapper(
                    {"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"application/json")]}
                )
                await send_wrapper({"type": "http.response.body", "body": body})
        finally:
            if scope["type"] == "http":
                REQUESTS.labels(scope["method"], route, str(status)).inc()
            REQUEST_ID.reset(token)


async def metrics(_request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: what log shippers ingest without parsing rules."""

    _STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        for key, value in record.__dict__.items():
            if key not in self._STANDARD and key not in entry:
                entry[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "tortoise"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Per-request access lines are what /metrics is for; keep logs for events.
    logging.getLogger("uvicorn.access").setLevel("WARNING")
    logging.getLogger("tortoise").setLevel("WARNING")
