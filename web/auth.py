"""API-key authentication for HTTP: `Authorization: Bearer <key>`, else HTTP 401.

WebSockets authenticate in `connection_init` instead (see server.GraphQLApp), and the
GraphiQL page itself is public (web/graphiql): the key is entered on it, and it sends it.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from services.auth import authenticate, bearer_token
from web.errors import HttpErrorCode, error_response

PUBLIC = frozenset({"/", "/healthz", "/readyz", "/metrics", "/favicon.ico"})
# /simulator/ is mounted by `campaigns dev` only; it checks its own Bearer token.
PUBLIC_PREFIXES = ("/webhooks/", "/static/", "/simulator/")


def _is_graphiql_page(scope: Scope, headers: Headers) -> bool:
    return (
        scope["path"] == "/graphql"
        and scope["method"] == "GET"
        and not scope.get("query_string")
        and "text/html" in headers.get("accept", "")
    )


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC or scope["path"].startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if _is_graphiql_page(scope, headers):
            await self.app(scope, receive, send)
            return
        principal = await authenticate(bearer_token(headers.get("authorization")))
        if principal is None:
            response = error_response(
                401,
                "A valid API key is required: Authorization: Bearer <key>.",
                HttpErrorCode.UNAUTHENTICATED,
                headers={"WWW-Authenticate": 'Bearer realm="campaigns"'},
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
