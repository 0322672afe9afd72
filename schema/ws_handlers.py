"""Strawberry's two WebSocket protocol handlers, with two changes:

- each operation's task knows where its results go (`CURRENT_STREAM`), so a
  subscription can hand its later results to a broadcast group (schema/broadcast.py);
- a client that disconnects while a result is being sent is not an error: strawberry
  logged one ERROR ("Exception in worker task") per such subscriber, which with
  thousands of dashboards closing buried real errors.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from schema.broadcast import CURRENT_STREAM, StreamTarget
from schema.context import Context


def _frame_start(kind: str, operation_id: str) -> str:
    return f'{{"type":"{kind}","id":{json.dumps(operation_id)},"payload":'


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws (the graphql-ws library's protocol)."""

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        if isinstance(self.websocket, ASGIWebSocketAdapter):
            CURRENT_STREAM.set(
                StreamTarget(
                    query=operation.query,
                    variables=operation.variables,
                    operation_name=operation.operation_name,
                    frame_start=_frame_start("next", operation.id),
                    send_text=self.websocket.ws.send_text,
                    is_open=lambda: not operation.completed and self.operations.get(operation.id) is operation,
                )
            )
        await super().run_operation(operation)

    async def handle_task_exception(self, error: Exception) -> None:
        if not isinstance(error, WebSocketDisconnected):
            await super().handle_task_exception(error)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """graphql-ws (subscriptions-transport-ws, Apollo's legacy protocol)."""

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, Any] | None,
    ) -> None:
        task = asyncio.current_task()
        if isinstance(self.websocket, ASGIWebSocketAdapter):
            CURRENT_STREAM.set(
                StreamTarget(
                    query=query,
                    variables=variables,
                    operation_name=operation_name,
                    frame_start=_frame_start("data", operation_id),
                    send_text=self.websocket.ws.send_text,
                    is_open=lambda: self.tasks.get(operation_id) is task,
                )
            )
        try:
            await super().handle_async_results(operation_id, query, operation_name, variables)
        except WebSocketDisconnected:
            pass  # the client left; nothing awaits this task to see the exception
