"""web/observability.py: bounded route labels, one count and one latency sample per
HTTP response (never for a WebSocket), the request id in force for everything served
under it, JSON log lines, and the logging setup.

Request id headers (echo, replacement, cutting) and the /metrics text are in
tests/web/test_edges.py."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect as ws_connect

from runtime.request_ids import REQUEST_ID, current_request_id
from tests.conftest import Api, serve
from tests.wsclient import connect
from web.observability import JsonFormatter, ObservabilityMiddleware, _route_label, configure_logging

log = logging.getLogger("tests.observability")


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/campaigns/Q2FtcGFpZ246MQ/recipients", "/campaigns/{id}/recipients"),
        ("/campaigns/Q2FtcGFpZ246MQ/report.csv", "/campaigns/{id}/report.csv"),
        ("/campaigns/anything/else", "/campaigns/{id}/recipients"),
        ("/graphql", "/graphql"),
        ("/healthz", "/healthz"),
        ("/readyz", "/readyz"),
        ("/metrics", "/metrics"),
        ("/", "/"),
        ("/webhooks/whatsapp", "/webhooks/whatsapp"),
        ("/static/dashboard/app.js", "other"),
        ("/graphql/", "other"),
        ("/webhooks/other", "other"),
        ("/9f8e7d6c", "other"),
    ],
)
def test_route_labels_name_the_route_never_the_raw_path(path: str, label: str) -> None:
    assert _route_label(path) == label


def counted(method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("campaigns_http_requests_total", labels) or 0.0


def timed(route: str) -> float:
    return REGISTRY.get_sample_value("campaigns_http_request_duration_seconds_count", {"route": route}) or 0.0


def http_requests_of(route: str) -> float:
    """All requests counted under `route`, whatever their method and status."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "campaigns_http_requests"
        for sample in metric.samples
        if sample.name == "campaigns_http_requests_total" and sample.labels["route"] == route
    )


async def test_each_response_is_counted_once_under_its_method_route_and_status(
    http: httpx.AsyncClient, api: Api
) -> None:
    calls = [
        ("GET", "/healthz", {}, "/healthz", 200),
        ("POST", "/graphql", {}, "/graphql", 401),
        ("GET", "/no/such/page", api.headers, "other", 404),
        ("DELETE", "/healthz", {}, "/healthz", 405),
    ]
    for method, path, headers, route, status in calls:
        before, samples = counted(method, route, status), timed(route)
        response = await http.request(method, path, headers=headers)
        assert response.status_code == status
        assert counted(method, route, status) == before + 1, (method, path)
        assert timed(route) == samples + 1, (method, path)


async def test_a_websocket_is_not_counted_as_an_http_request(server: str, api: Api) -> None:
    before, samples = http_requests_of("/graphql"), timed("/graphql")
    async with connect(server, api.key) as session:
        await session.subscribe("{ viewer { name } }")
        assert await session.data() == {"viewer": {"name": "Test workspace"}}
    assert http_requests_of("/graphql") == before
    assert timed("/graphql") == samples


class Lines(logging.Handler):
    """Formats each record as it is emitted, while its context is still in force."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        log.removeHandler(handler)


async def handled(_request: Request) -> PlainTextResponse:
    log.info("handled")
    return PlainTextResponse(current_request_id())


async def broken(_request: Request) -> PlainTextResponse:
    raise RuntimeError("a bug in a route")


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(current_request_id())
    await websocket.close()


TINY = Starlette(
    routes=[Route("/handled", handled), Route("/broken", broken), WebSocketRoute("/socket", socket)],
    middleware=[Middleware(ObservabilityMiddleware)],
)


async def test_everything_served_under_a_request_id_logs_it(lines: Lines) -> None:
    async with serve(TINY) as url, httpx.AsyncClient(base_url=url) as client:
        given = await client.get("/handled", headers={"X-Request-ID": "req-given-1"})
        generated = await client.get("/handled")
        async with ws_connect(url.replace("http", "ws") + "/socket", additional_headers={"X-Request-ID": "ws-1"}) as ws:
            over_socket = await ws.recv()
    assert given.text == "req-given-1" == given.headers["x-request-id"]
    assert generated.text == generated.headers["x-request-id"] != "req-given-1"
    assert over_socket == "ws-1"  # a WebSocket runs under its upgrade's id
    assert [line["request_id"] for line in lines.lines if line["msg"] == "handled"] == ["req-given-1", generated.text]
    assert current_request_id() == "-"  # and nothing is left set after a request


async def test_an_unhandled_error_is_answered_and_logged_with_the_request_id(lines: Lines) -> None:
    """Every response carries its request id (tests/web/test_edges.py), so that a user's
    report leads to the log: the 500 of a route that raised, most of all."""
    before = counted("GET", "other", 500)
    crash_log = logging.getLogger("campaigns.http")
    async with serve(TINY) as url, httpx.AsyncClient(base_url=url) as client:
        crash_log.addHandler(lines)
        try:
            response = await client.get("/broken", headers={"X-Request-ID": "req-crash-1"})
        finally:
            crash_log.removeHandler(lines)
    assert response.status_code == 500
    assert counted("GET", "other", 500) == before + 1
    assert response.headers.get("x-request-id") == "req-crash-1", response.headers
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL"
    assert "req-crash-1" in response.json()["errors"][0]["message"]
    crashes = [line for line in lines.lines if line["logger"] == "campaigns.http"]
    assert len(crashes) == 1 and crashes[0]["request_id"] == "req-crash-1" and "exc" in crashes[0], crashes


def record(msg: str, *args: object, exc: BaseException | None = None, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("campaigns.test", logging.WARNING, __file__, 1, msg, args, None)
    if exc is not None:
        made.exc_info = (type(exc), exc, exc.__traceback__)
    made.created = datetime(2030, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC).timestamp()
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_a_log_line_is_one_json_object_with_the_request_id_and_the_extras() -> None:
    token = REQUEST_ID.set("req-ctx")
    try:
        line = JsonFormatter().format(
            record("sent %d of %s\nto ünï", 3, "all", campaign_id=7, ratio=0.5, ok=True, none=None, obj={"a": 1})
        )
    finally:
        REQUEST_ID.reset(token)
    assert "\n" not in line and "ünï" in line  # one line, and text as it is
    assert json.loads(line) == {
        "ts": "2030-01-02T03:04:05.678+00:00",
        "level": "WARNING",
        "logger": "campaigns.test",
        "msg": "sent 3 of all\nto ünï",
        "request_id": "req-ctx",
        "campaign_id": 7,
        "ratio": 0.5,
        "ok": True,
        "none": None,
        "obj": "{'a': 1}",  # anything else as its repr
    }


def test_a_request_id_given_with_the_record_wins_and_outside_a_request_it_is_a_dash() -> None:
    formatter = JsonFormatter()
    token = REQUEST_ID.set("req-ctx")
    try:
        assert json.loads(formatter.format(record("x", request_id="req-extra")))["request_id"] == "req-extra"
    finally:
        REQUEST_ID.reset(token)
    assert json.loads(formatter.format(record("x")))["request_id"] == "-"


def test_an_extra_named_like_a_field_does_not_replace_it_and_a_traceback_is_kept() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError as error:
        entry = json.loads(JsonFormatter().format(record("failed", exc=error, level="FAKE", ts="then")))
    assert (entry["level"], entry["ts"]) == ("WARNING", "2030-01-02T03:04:05.678+00:00")
    assert entry["exc"].startswith("Traceback (most recent call last):")
    assert entry["exc"].endswith("RuntimeError: boom")


NAMED = ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "tortoise")


@pytest.fixture
def logging_restored() -> Iterator[None]:
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in NAMED)]
    saved = [(logger.handlers[:], logger.propagate, logger.level) for logger in loggers]
    try:
        yield
    finally:
        for logger, (handlers, propagate, level) in zip(loggers, saved, strict=True):
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.setLevel(level)


def test_configure_logging_sends_every_logger_through_one_json_handler_on_stderr(
    logging_restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.getLogger("uvicorn").addHandler(logging.StreamHandler())  # as uvicorn's own config does
    configure_logging("DEBUG")
    root = logging.getLogger()
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr
    assert isinstance(handler.formatter, JsonFormatter)
    assert root.level == logging.DEBUG
    for name in NAMED:
        logger = logging.getLogger(name)
        assert (logger.handlers, logger.propagate) == ([], True), name
    assert logging.getLogger("uvicorn.access").level == logging.WARNING  # per-request lines are /metrics' job
    assert logging.getLogger("tortoise").level == logging.WARNING
    logging.getLogger("arq").info("job %s done", "j1")
    logging.getLogger("uvicorn.access").info("GET / 200")  # below WARNING: dropped
    [line] = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert (entry["logger"], entry["level"], entry["msg"], entry["request_id"]) == ("arq", "INFO", "job j1 done", "-")
