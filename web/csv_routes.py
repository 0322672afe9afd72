"""`POST /campaigns/{id}/recipients` (text/csv upload) and `GET /campaigns/{id}/report.csv`;
the opt-out list the same way: `POST /opt-outs` and `GET /opt-outs.csv`."""

from __future__ import annotations

import tempfile
from typing import IO

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from domain.access import Scope, check
from domain.errors import DomainError, LimitExceeded
from domain.ids import expect_id
from services.auth import Principal
from services.campaigns import get_campaign
from services.csv_io import export_csv, export_opt_outs, import_csv, import_opt_outs
from web.errors import HttpErrorCode, domain_error_response, error_response

_SPOOL_IN_MEMORY = 8 * 1024 * 1024


def _refused_media(request: Request) -> Response | None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("text/csv", "application/csv"):
        return None
    return error_response(
        415, "Send the file as Content-Type: text/csv.", HttpErrorCode.UNSUPPORTED_MEDIA_TYPE, ("content-type",)
    )


async def _spooled(request: Request, spool: IO[bytes]) -> None:
    """The upload into `spool`, under MAX_IMPORT_BYTES. Spooled first: an import's
    transaction must not wait on the network."""
    limit = request.app.state.settings.max_import_bytes
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise LimitExceeded(f"The upload is larger than {limit:,} bytes.", ("csv",))
        spool.write(chunk)


def _refused_upload(request: Request, principal: Principal, operation: str) -> Response | None:
    """Why a CSV upload is refused before its body is read: the key lacks `write`, or
    the body is not CSV (None: go on)."""
    try:
        check(operation, Scope.WRITE, principal.scopes)
    except DomainError as error:
        return domain_error_response(error)
    return _refused_media(request)


async def import_recipients(request: Request) -> Response:
    principal = request.state.principal
    refused = _refused_upload(request, principal, "the CSV import")
    if refused is not None:
        return refused
    try:
        pk = expect_id(request.path_params["id"], "Campaign")
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            await _spooled(request, spool)  # type: ignore[arg-type]
            report = await import_csv(principal, pk, spool)  # type: ignore[arg-type]
    except DomainError as error:
        return domain_error_response(error)
    except ClientDisconnect:
        return error_response(400, "The upload was interrupted.", HttpErrorCode.BAD_REQUEST, ("csv",))
    return JSONResponse(
        {
            "added": report.added,
            "duplicates": report.duplicates,
            "optedOut": report.opted_out,
            "invalidCount": report.invalid_count,
            "invalid": [{"row": r.index, "phone": r.phone, "reason": r.reason} for r in report.invalid],
        }
    )


async def export_report(request: Request) -> Response:
    principal = request.state.principal
    gid = request.path_params["id"]
    try:
        check("the CSV report", Scope.READ, principal.scopes)
        campaign = await get_campaign(principal, expect_id(gid, "Campaign"))
    except DomainError as error:
        return domain_error_response(error)
    return StreamingResponse(
        export_csv(campaign),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="campaign-{campaign.id}-report.csv"'},
    )


async def import_opt_out_list(request: Request) -> Response:
    """`POST /opt-outs`: a CSV with a `phone` column (and optionally `detail`) added to
    the workspace's opt-out list; scope `write`, like addOptOuts."""
    principal = request.state.principal
    refused = _refused_upload(request, principal, "the opt-out import")
    if refused is not None:
        return refused
    try:
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            await _spooled(request, spool)  # type: ignore[arg-type]
            report = await import_opt_outs(principal, spool)  # type: ignore[arg-type]
    except DomainError as error:
        return domain_error_response(error)
    except ClientDisconnect:
        return error_response(400, "The upload was interrupted.", HttpErrorCode.BAD_REQUEST, ("csv",))
    return JSONResponse(
        {
            "added": report.added,
            "alreadyOptedOut": report.already,
            "invalidCount": report.invalid_count,
            "invalid": [{"row": row, "phone": phone, "reason": reason} for row, phone, reason in report.invalid],
        }
    )


async def export_opt_out_list(request: Request) -> Response:
    """`GET /opt-outs.csv`: the workspace's opt-out list, streamed; scope `read`."""
    principal = request.state.principal
    try:
        check("the opt-out export", Scope.READ, principal.scopes)
    except DomainError as error:
        return domain_error_response(error)
    return StreamingResponse(
        export_opt_outs(principal),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="opt-outs.csv"'},
    )
