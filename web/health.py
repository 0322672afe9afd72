"""Liveness and readiness."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse

from services import db

log = logging.getLogger("campaigns.health")


async def healthz(_request: Request) -> JSONResponse:
    """The process is up and its event loop answers."""
    return JSONResponse({"status": "ok"})


def _failed(dependency: str, exc: Exception) -> str:
    """What the public answer says: the dependency and the kind of failure, never the
    exception's text (it names hosts and ports). The log line has it whole."""
    log.warning("readiness: %s failed: %r", dependency, exc)
    return "error: timeout" if isinstance(exc, TimeoutError) else "error: unavailable"


async def readyz(request: Request) -> JSONResponse:
    """Ready when the database and Redis both answer within a second."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(db.fetch_val(db.client(), "SELECT 1 AS one"), 1.0)
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["database"] = _failed("database", exc)
    redis = getattr(request.app.state, "redis", None)
    if redis is None:
        checks["redis"] = "error: not configured"
    else:
        try:
            await asyncio.wait_for(redis.ping(), 1.0)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = _failed("redis", exc)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )
