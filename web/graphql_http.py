"""GraphQL over HTTP as the spec draft says (graphql/graphql-over-http, the draft that
graphql-http's audit suite checks, tests/web/test_graphql_http_audit.py).

- **Media types.** The answer is `application/graphql-response+json` when the client's
  Accept names it (and prefers it), `application/json` when it names that, gives only
  wildcards, or sends no Accept (the legacy default, so existing clients see no change).
  An Accept that allows neither is refused with 406.
- **Request errors** (the document does not parse or validate, a limit of
  schema/extensions.py is passed, no operation can be chosen, the variables do not
  coerce) are answered without `data`, as the GraphQL spec says of errors raised
  before execution: 400 with graphql-response+json, 200 with application/json (legacy
  clients only trust a 2xx body). Field errors are execution results: 200 with `data`.
- **Refusals before there is a GraphQL request** (not JSON, not a JSON object, a field
  of the wrong type, no `query`, a Content-Type other than JSON, an unsupported method)
  are HTTP errors in the one shape of web/errors.py, whatever the Accept: 400, 415, 405.
- **GET carries queries only**: a mutation over GET is 405 with `Allow: POST`, and
  subscriptions go over the WebSocket at the same URL.

This module knows nothing of the schema: server.py's GraphQLApp adds the context and
the WebSocket handlers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from domain.errors import ErrorCode
from web.errors import HttpErrorCode, error_response

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
#: the media types answers come in, the server's preference first
MEDIA_TYPES = (GRAPHQL_RESPONSE_JSON, JSON)
METHODS = "GET, POST"

ContextT = TypeVar("ContextT")
RootValueT = TypeVar("RootValueT")

# how closely an Accept range names a media type (RFC 9110 §12.5.1: the most specific
# range that matches gives the type its quality)
_ANY, _SUBTYPE_ANY, _EXACT = 1, 2, 3


def _ranges(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an Accept header with their qualities; malformed ones skipped."""
    ranges = []
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        if media.count("/") != 1:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        ranges.append((media.lower(), quality))
    return ranges


def _quality(media_type: str, ranges: Sequence[tuple[str, float]]) -> tuple[float, int]:
    """(quality, specificity) that `ranges` give `media_type`; (0, 0) when none matches."""
    main = media_type.split("/")[0]
    best = (0.0, 0)
    for media, quality in ranges:
        if media == media_type:
            specificity = _EXACT
        elif media == f"{main}/*":
            specificity = _SUBTYPE_ANY
        elif media == "*/*":
            specificity = _ANY
        else:
            continue
        if specificity > best[1]:
            best = (quality, specificity)
    return best


def negotiate(accept: str | None) -> str | None:
    """The media type to answer in, or None when `accept` allows none of ours (406).

    The highest quality wins. Of equal ones, a type the client named beats a wildcard;
    two named types go to graphql-response+json, two wildcards to application/json: a
    client that names no GraphQL type is taken for a legacy one, which reads only 2xx
    bodies (the audit's "*/*" and missing-Accept cases)."""
    if accept is None or not accept.strip():
        return JSON
    ranges = _ranges(accept)
    best: tuple[float, int, bool] | None = None
    chosen = None
    for media_type in MEDIA_TYPES:
        quality, specificity = _quality(media_type, ranges)
        if quality <= 0:
            continue
        named = specificity == _EXACT
        rank = (quality, specificity, media_type == (GRAPHQL_RESPONSE_JSON if named else JSON))
        if best is None or rank > best:
            best, chosen = rank, media_type
    return chosen


_CODES: dict[int, HttpErrorCode] = {
    405: HttpErrorCode.METHOD_NOT_ALLOWED,
    406: HttpErrorCode.NOT_ACCEPTABLE,
    415: HttpErrorCode.UNSUPPORTED_MEDIA_TYPE,
}


class Refusal(HTTPException):
    """An HTTP refusal in the one error shape: its code, the field at fault, headers."""

    def __init__(
        self,
        status: int,
        message: str,
        field: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        code: ErrorCode | HttpErrorCode | None = None,
    ) -> None:
        super().__init__(status, message)
        self.code = code or _CODES.get(status, HttpErrorCode.BAD_REQUEST)
        self.field = tuple(field) if field else None
        self.headers = dict(headers or {})


def refusal_response(error: HTTPException) -> Response:
    """`error` (ours, or one strawberry raised) as an HTTP error in the one shape."""
    if isinstance(error, Refusal):
        return error_response(error.status_code, error.reason, error.code, error.field, error.headers)
    headers = {"Allow": METHODS} if error.status_code == 405 else None
    code = _CODES.get(error.status_code, HttpErrorCode.BAD_REQUEST)
    return error_response(error.status_code, error.reason, code, headers=headers)


class Negotiated(Response):
    """The sub-response resolvers may set headers and a status on, carrying the media
    type the answer goes out in."""

    def __init__(self, answer_type: str) -> None:
        super().__init__()
        self.answer_type = answer_type
        self.status_code = None  # type: ignore[assignment]  # unset: the view decides
        del self.headers["content-length"]


def _request_error(message: str, code: HttpErrorCode, field: Sequence[str] | None = None) -> ExecutionResult:
    extensions: dict[str, Any] = {"code": code.value}
    if field:
        extensions["field"] = list(field)
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions=extensions)])


def is_request_error(result: ExecutionResult) -> bool:
    """Raised before execution: no data, and no error at a field. (Field errors always
    have a path; syntax, validation and variable errors never do.)"""
    return result.data is None and bool(result.errors) and all(e.path is None for e in result.errors or ())


class GraphQLOverHTTP(GraphQL[ContextT, RootValueT]):
    """Strawberry's ASGI view, answering as the GraphQL-over-HTTP spec says."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        response: Response | WebSocket
        try:
            response = await self.run(Request(scope, receive))
        except HTTPException as error:
            response = refusal_response(error)
        assert isinstance(response, Response)  # an HTTP request is answered with one
        await response(scope, receive, send)

    async def run(  # type: ignore[override]
        self, request: Request | WebSocket, context: Any = UNSET, root_value: Any = UNSET
    ) -> Response | WebSocket:
        if isinstance(request, Request):
            adapter = self.request_adapter_class(request)
            if not self.is_request_allowed(adapter):
                raise Refusal(405, "GraphQL is served over GET and POST.", headers={"Allow": METHODS})
            if not self.should_render_graphql_ide(adapter):
                answer_type = negotiate(request.headers.get("accept"))
                if answer_type is None:
                    raise Refusal(
                        406,
                        f"Accept allows neither {GRAPHQL_RESPONSE_JSON} nor {JSON}, the types GraphQL answers in.",
                        field=("Accept",),
                    )
                request.state.graphql_answer_type = answer_type
        return await super().run(request, context, root_value)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        return Negotiated(getattr(request.state, "graphql_answer_type", JSON))

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        """The request's parameters, each checked: a refusal names the one at fault."""
        if request.method == "GET":
            # the empty string stands for an absent parameter (the spec's GET rules)
            data: dict[str, Any] = {k: v for k, v in request.query_params.items() if v != ""}
            for name in ("variables", "extensions"):
                if name in data:
                    data[name] = _json(data[name], name)
        else:
            _check_content_type(request.content_type)
            data = _json(await request.get_body(), "body")
        if not isinstance(data, dict):
            raise Refusal(400, "The body must be a JSON object with `query` (batches are not served).", field=("body",))
        query = data.get("query")
        if query is None or query == "":
            raise Refusal(400, "The request has no `query`: send the GraphQL document in it.", field=("query",))
        if not isinstance(query, str):
            raise Refusal(400, "`query` must be a string: the GraphQL document.", field=("query",))
        operation_name = data.get("operationName")
        if not isinstance(operation_name, str | None):
            raise Refusal(400, "`operationName` must be a string or null.", field=("operationName",))
        for name in ("variables", "extensions"):
            if not isinstance(data.get(name), dict | None):
                raise Refusal(400, f"`{name}` must be a JSON object or null.", field=(name,))
        return GraphQLRequestData(
            query=query,
            variables=data.get("variables"),
            operation_name=operation_name or None,
            extensions=data.get("extensions"),
        )

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: ContextT,
        root_value: RootValueT | None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Strawberry raises for an operation it will not run; these are GraphQL request
        errors, answered as such (a mutation over GET with 405, as the spec says)."""
        try:
            return await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except HTTPException as error:
            cause = error.__cause__
            if isinstance(cause, InvalidOperationTypeError) and cause.operation_type is OperationType.MUTATION:
                sub_response.status_code = 405
                sub_response.headers["Allow"] = "POST"
                return _request_error(
                    "Mutations are sent with POST: GET serves queries only.", HttpErrorCode.METHOD_NOT_ALLOWED
                )
            if isinstance(cause, InvalidOperationTypeError):
                return _request_error(
                    "Subscriptions are served over a WebSocket at this URL (graphql-transport-ws), not plain HTTP.",
                    HttpErrorCode.BAD_REQUEST,
                )
            if isinstance(cause, CannotGetOperationTypeError):
                message = (
                    f"The document has no operation named {cause.operation_name!r}."
                    if cause.operation_name
                    else "The document has no operation, or several: name the one to run in `operationName`."
                )
                return _request_error(message, HttpErrorCode.BAD_REQUEST, ("operationName",))
            raise

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = process_result(result)
        if is_request_error(result):
            # nothing was executed, so there is no data, not even null (GraphQL spec,
            # "Response Format"); the status then says it was the request at fault
            response.pop("data", None)
        return response

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        answer_type = getattr(sub_response, "answer_type", JSON)
        response = Response(
            self.encode_json(response_data),
            status_of(response_data, answer_type),
            media_type=f"{answer_type}; charset=utf-8",
            headers={"Vary": "Accept"},
        )
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response


def status_of(response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], answer_type: str) -> int:
    """200 for a result with `data`; a request error's status by the media type."""
    if isinstance(response_data, list) or "data" in response_data or answer_type == JSON:
        return 200
    errors = response_data.get("errors") or []
    unexpected = any(isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "INTERNAL" for e in errors)
    return 500 if unexpected else 400


def _check_content_type(content_type: str | None) -> None:
    if not content_type:
        raise Refusal(415, "A POST needs Content-Type: application/json.", field=("Content-Type",))
    media, params = parse_content_type(content_type)
    charset = params.get("charset", "utf-8").lower()
    if media.lower() != JSON or charset not in ("utf-8", "utf8"):
        raise Refusal(
            415, f"Content-Type {content_type!r} is not served: send application/json (UTF-8).", field=("Content-Type",)
        )


def _json(text: str | bytes, field: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise Refusal(400, f"`{field}` is not valid JSON: {error}.", field=(field,)) from error
