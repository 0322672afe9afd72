"""The ASGI application: GraphQL (HTTP and WebSocket), CSV import/export, health,
metrics. `create_app()` is what uvicorn serves and what tests build inline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from tortoise.contrib.starlette import RegisterTortoise

from jobs.effects import LifecycleEffects, lazy_redis
from live.hub import LiveHub
from live.publisher import ProgressPublisher
from providers.whatsapp import provider_from
from runtime import gc as gc_tuning
from schema.app import schema
from schema.broadcast import Broadcaster
from schema.context import Context
from schema.ws_handlers import LegacyWSHandler, TransportWSHandler
from services.auth import authenticate, bearer_token, hash_key
from services.inbox import InboxApplier, InboxWriter
from services.tokens import TokenBox
from settings import Settings
from web import dashboard as dashboard_package
from web import graphiql
from web.auth import ApiKeyMiddleware
from web.csp import page_policy
from web.csv_routes import export_opt_out_list, export_report, import_opt_out_list, import_recipients
from web.errors import http_exception_response
from web.graphql_http import GraphQLOverHTTP
from web.health import healthz, readyz
from web.key_watch import KeyWatch
from web.limits import BodyLimit
from web.observability import ObservabilityMiddleware, configure_logging, metrics
from web.webhooks import PATH as WEBHOOK_PATH
from web.webhooks import WebhookFastPath, whatsapp_webhook_verify

INIT_TIMEOUT = timedelta(seconds=10)
GRAPHQL_PATH = "/graphql"
#: how long a browser may reuse a preflight's answer
CORS_MAX_AGE_S = 600


class GraphQLApp(GraphQLOverHTTP[Context, None]):
    """Strawberry's ASGI app answering as GraphQL over HTTP says (web/graphql_http.py),
    with our context, WebSocket authentication and protocol handlers
    (schema/ws_handlers.py)."""

    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:
            pass  # the client went away mid-request: nothing to answer, nothing to log

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:  # type: ignore[override]
        principal = request.scope.get("state", {}).get("principal")
        effects: LifecycleEffects | None = getattr(request.app.state, "effects", None)
        return Context(
            request=request,
            response=response,
            principal=principal,
            after_transition=effects.after_transition if effects else None,
            settings=getattr(request.app.state, "settings", None),
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        # GraphiQL from the service's own files, not Strawberry's CDN page (web/graphiql)
        return graphiql.page(request)

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:  # type: ignore[override]
        params = context.connection_params or {}
        key = params.get("apiKey") or bearer_token(
            str(params.get("Authorization") or params.get("authorization") or "")
        )
        principal = await authenticate(str(key) if key else None)
        if principal is None:
            raise ConnectionRejectionError({"message": "A valid API key is required in connection_init."})
        context.principal = principal
        watch: KeyWatch | None = getattr(context.request.app.state, "key_watch", None)
        if watch is not None:
            watch.add(hash_key(str(key)), context.request)
        return None


DASHBOARD_DIR = Path(dashboard_package.__file__).resolve().parent


class DashboardFiles(StaticFiles):
    """The dashboard's scripts and styles under /static/dashboard/ (public, like the
    page: the API key is asked for in the browser). Only .html, .js and .css files;
    revalidated on every load (ETag), so a deploy is seen at once."""

    SERVED = (".html", ".js", ".css")

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not path.endswith(self.SERVED):
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        return response


def dashboard(request: Request) -> FileResponse:
    """`/`: the live dashboard page (web/dashboard/index.html)."""
    policy = page_policy(request.headers.get("host", ""))
    return FileResponse(
        DASHBOARD_DIR / "index.html",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff"},
    )


class App(Starlette):
    """The Starlette app, with webhook POSTs (about three per message sent, the busiest
    requests by far) answered before its middleware stack (web/webhooks.py), and
    GraphQL's WebSockets handed to it past that stack: CORS, the body limit and the key
    check are for HTTP only (a socket authenticates in `connection_init`), and each of
    the stack's ten layers is a frame every open socket keeps for its whole life (about
    3 KiB a socket; bench/fanout.py). They keep their request id."""

    webhooks: WebhookFastPath
    subscriptions: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if WebhookFastPath.handles(scope):
            await self.webhooks(scope, receive, send)
            return
        if scope["type"] == "websocket" and scope["path"] == GRAPHQL_PATH:
            scope["app"] = self  # as Starlette sets it: the handlers read the app's state
            await self.subscriptions(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, manage_logging: bool = True) -> Starlette:
    """The app. `manage_logging`: it owns its process, so it configures the logs and
    tunes the garbage collector (tests, which share their process, pass False)."""
    settings = settings or Settings.from_env()
    graphql = GraphQLApp(
        schema,
        graphql_ide="graphiql",
        allowed_origins=settings.allowed_origins,
        connection_init_wait_timeout=INIT_TIMEOUT,
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if manage_logging:
            configure_logging(settings.log_level)
        app.state.settings = settings
        # One pool for readiness checks, job enqueueing and control messages. It connects
        # lazily: the API starts, and stays up, while Redis is down (/readyz says so).
        app.state.redis = lazy_redis(settings.redis_url) if settings.redis_url else None
        app.state.publisher = ProgressPublisher(app.state.redis) if app.state.redis is not None else None
        app.state.effects = LifecycleEffects(app.state.redis, app.state.publisher)
        # sendTestMessage's provider: few calls, so a small connection pool
        app.state.provider = provider_from(settings, concurrency=10)
        app.state.token_box = TokenBox(settings.sender_token_key)
        async with RegisterTortoise(app, config=settings.tortoise_config()):
            publisher = app.state.publisher
            app.state.applier = InboxApplier(
                publisher.touched if publisher is not None else None,
                bootstrap_number=settings.whatsapp_phone_number_id,
            )
            app.state.inbox = InboxWriter(on_commit=app.state.applier.wake)
            await app.state.inbox.start()
            await app.state.applier.start()
            app.state.key_watch = KeyWatch()
            await app.state.key_watch.start()
            # ONE Redis subscription per process, fanned out to every GraphQL subscriber
            app.state.hub = LiveHub(app.state.redis) if app.state.redis is not None else None
            app.state.broadcaster = Broadcaster(app.state.hub, schema) if app.state.hub is not None else None
            if publisher is not None:
                await publisher.start()
                await app.state.hub.start()
            if manage_logging:  # the app owns its process (not so in tests)
                gc_tuning.tune()
            try:
                yield {}
            finally:
                for hook in app.state.before_shutdown:  # e.g. `campaigns dev` drains its worker
                    await hook()
                await app.state.key_watch.close()
                await app.state.inbox.close()
                await app.state.applier.close()
                if publisher is not None:
                    await app.state.hub.close()
                    await publisher.close()
                await app.state.provider.close()
                if app.state.redis is not None:
                    await app.state.redis.aclose()

    routes = [
        Route("/", dashboard),
        Mount("/static/dashboard", DashboardFiles(directory=DASHBOARD_DIR), name="dashboard"),
        graphiql.files(),
        Route(GRAPHQL_PATH, graphql, methods=["GET", "POST"]),
        WebSocketRoute(GRAPHQL_PATH, graphql),  # reached through App.subscriptions
        Route("/campaigns/{id}/recipients", import_recipients, methods=["POST"]),
        Route("/campaigns/{id}/report.csv", export_report, methods=["GET"]),
        Route("/opt-outs", import_opt_out_list, methods=["POST"]),
        Route("/opt-outs.csv", export_opt_out_list, methods=["GET"]),
        Route(WEBHOOK_PATH, whatsapp_webhook_verify),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ]
    app = App(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception_response},
        # CORS before the key check: a browser's preflight carries no key, and a refusal
        # (401, 403) needs the CORS headers for the page to read it
        middleware=[
            Middleware(ObservabilityMiddleware),
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.allowed_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                expose_headers=["X-Request-ID"],
                max_age=CORS_MAX_AGE_S,
            ),
            Middleware(BodyLimit, limit=settings.max_graphql_body_bytes),
            Middleware(ApiKeyMiddleware),
        ],
    )
    app.state.settings = settings
    #: awaited first at shutdown, while the ORM and Redis are still open
    app.state.before_shutdown = []
    app.webhooks = WebhookFastPath(app.state)
    app.subscriptions = ObservabilityMiddleware(graphql)  # the request id, as for every request
    return app
