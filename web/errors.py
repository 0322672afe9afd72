"""The one shape of every error an HTTP edge answers: GraphQL's.

`{"errors": [{"message": ..., "extensions": {"code": ..., "field": [...]}}]}`, the same
as a GraphQL error from /graphql, so a client reads a refused upload, a missing API key
and a refused webhook the way it reads a GraphQL error. `field` names the input at fault
(a path, as in `userErrors`) and is absent when no one field is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import StrEnum

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from domain.errors import DomainError, ErrorCode


class HttpErrorCode(StrEnum):
    """Refusals of the HTTP edge itself, beside the domain's ErrorCode."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    BAD_REQUEST = "BAD_REQUEST"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    UNAVAILABLE = "UNAVAILABLE"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    INTERNAL = "INTERNAL"


#: the HTTP status of each domain refusal
DOMAIN_STATUS = {
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.VALIDATION: 422,
    ErrorCode.INVALID_TRANSITION: 409,
    ErrorCode.CONFLICT: 409,
    ErrorCode.LIMIT_EXCEEDED: 413,
    ErrorCode.FORBIDDEN: 403,
}


def error_body(message: str, code: ErrorCode | HttpErrorCode, field: Sequence[str] | None = None) -> bytes:
    """The JSON body of one error."""
    extensions: dict[str, object] = {"code": code.value}
    if field:
        extensions["field"] = list(field)
    return json.dumps({"errors": [{"message": message, "extensions": extensions}]}).encode()


def error_response(
    status: int,
    message: str,
    code: ErrorCode | HttpErrorCode,
    field: Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An HTTP error answer in the one shape."""
    return Response(error_body(message, code, field), status, headers=headers, media_type="application/json")


def domain_error_response(error: DomainError) -> Response:
    """A domain refusal as HTTP: its status from DOMAIN_STATUS, its message, code and field."""
    return error_response(DOMAIN_STATUS[error.code], error.message, error.code, error.field)


async def http_exception_response(_request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, a method the route does not take) in
    the one shape, their headers (Allow) kept."""
    assert isinstance(exc, HTTPException)
    codes: dict[int, ErrorCode | HttpErrorCode] = {404: ErrorCode.NOT_FOUND, 405: HttpErrorCode.METHOD_NOT_ALLOWED}
    code = codes.get(exc.status_code, HttpErrorCode.BAD_REQUEST)
    return error_response(exc.status_code, exc.detail, code, headers=exc.headers)
