"""Strawberry's two WebSocket protocol handlers, with two changes:

- each operation's task knows where its results go (`CURRENT_STREAM`), so a
  subscription can hand its later results to a broadcast group (schema/broadcast.py).
  Once the first result of a handed-off operation is sent, the handler closes
  strawberry's stream (extensions, execution context, the generator chain: 15 of a
  subscription's 51 KiB, bench/fanout.py) and waits while the group writes; when the
  operation ends, however it ends, its member leaves the group;
- a client that disconnects while a result is being sent is not an error: strawberry
  logged one ERROR ("Exception in worker task") per such subscriber, which with
  thousands of dashboards closing buried real errors.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.execution import ExecutionResult

from schema.broadcast import CURRENT_STREAM, StreamTarget
from schema.context import Context


def _frame_start(kind: str, operation_id: str) -> str:
    return f'{{"type":"{kind}","id":{json.dumps(operation_id)},"payload":'


async def _until_handed_off(source: AsyncIterator[Any], target: StreamTarget) -> AsyncGenerator[Any, None]:
    """The results of `source` until its resolver handed the operation off (it does
    so just before yielding its first result; that result still goes through)."""
    async for result in source:
        yield result
        if target.handoff is not None:
            return


async def _serve_handed_off(target: StreamTarget, source: Any) -> None:
    """Close strawberry's stream, then let the group write until the operation ends."""
    assert target.handoff is not None
    member, after = target.handoff
    await source.aclose()
    await member.stream(after)


def _leave(target: StreamTarget | None) -> None:
    if target is not None and target.handoff is not None:
        target.handoff[0].leave()


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

    async def _send_result_stream(self, operation: Operation[Context, None], result_source: Any) -> None:
        target = CURRENT_STREAM.get()
        if target is None:
            await super()._send_result_stream(operation, result_source)
            return
        try:
            await super()._send_result_stream(operation, _until_handed_off(result_source, target))
            if target.handoff is not None:
                await _serve_handed_off(target, result_source)  # returns only by cancellation
        finally:
            _leave(target)

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
        finally:
            _leave(CURRENT_STREAM.get())

    async def send_data_message(self, execution_result: ExecutionResult, operation_id: str) -> None:
        await super().send_data_message(execution_result, operation_id)
        target = CURRENT_STREAM.get()
        if target is not None and target.handoff is not None and operation_id in self.subscriptions:
            # called from inside the loop over the stream: the stream is suspended at
            # its yield, so it can be closed; the loop never resumes (cancellation ends it)
            await _serve_handed_off(target, self.subscriptions[operation_id])
