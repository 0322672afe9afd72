"""A cap on request bodies where the service reads them whole (`/graphql`): a 150 MB
POST is refused with 413 before it is buffered, by its Content-Length or, for a
chunked body, as soon as what arrived passes the cap. (The CSV import streams to a
spool file under its own cap, MAX_IMPORT_BYTES.)"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import ErrorCode
from web.errors import error_response

#: read and dropped before a 413, so that a client still sending gets the answer
#: rather than a reset; past this the connection is just closed
DRAIN_MAX = 16 * 1024 * 1024


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, paths: frozenset[str] = frozenset({"/graphql"})) -> None:
        self.app = app
        self.limit = limit
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = too_large = complete = False

        async def counted() -> Message:
            nonlocal received, too_large, complete
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.limit:
                    # to the app this is a client that left (it stops reading and
                    # answers nothing); the 413 is sent below
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except ClientDisconnect:
            if not too_large:
                raise
        if too_large and not started:
            await self._refuse(scope, receive, send, drain=not complete)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, drain: bool = True) -> None:
        drained = 0
        while drain and drained <= DRAIN_MAX:
            part = await receive()
            if part["type"] != "http.request":
                return  # the client left
            drained += len(part.get("body", b""))
            if not part.get("more_body", False):
                break
        message = f"The request body is larger than {self.limit:,} bytes (MAX_GRAPHQL_BODY_BYTES)."
        response = error_response(413, message, ErrorCode.LIMIT_EXCEEDED, ("body",), headers={"Connection": "close"})
        await response(scope, receive, send)
