"""Strawberry's two WebSocket protocol handlers, with these changes:

- each operation's task knows where its results go (`CURRENT_STREAM`), so a
  subscription can hand its later results to a broadcast group (schema/broadcast.py).
  Once the first result of a handed-off operation is sent, the handler closes
  strawberry's stream (extensions, execution context, the generator chain: 15 of a
  subscription's 51 KiB, bench/fanout.py) while the group writes; when the
  operation ends, however it ends, its member leaves the group;
- graphql-transport-ws: an operation asking what a live group asks joins it without
  strawberry's pipeline (schema/subscriptions.py `join_known_group`), and once handed
  off its task ends: a future stands for it in strawberry's bookkeeping (what it
  cancels when the operation ends), not a task, its coroutines and their frames. The
  connection_init timeout's task, cancelled and done, is let go too (a cancelled task
  keeps its traceback, frames included);
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
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.execution import ExecutionResult

from schema.broadcast import CURRENT_STREAM, Member, StreamTarget
from schema.context import Context
from schema.subscriptions import join_known_group


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


class _Parked(asyncio.Future[None]):
    """Stands for a handed-off operation's task: cancelling it makes the member leave
    at once (a done callback would run only at the loop's next turn, and the group
    could write to the ended operation meanwhile)."""

    def __init__(self, member: Member) -> None:
        super().__init__()
        self._member = member

    def cancel(self, msg: Any = None) -> bool:
        self._member.leave()
        return super().cancel(msg)


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws (the graphql-ws library's protocol)."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        timeout = self.connection_init_timeout_task
        if timeout is not None:
            timeout.add_done_callback(self._forget_init_timeout)

    def _forget_init_timeout(self, task: asyncio.Task[None]) -> None:
        if self.connection_init_timeout_task is task:
            self.connection_init_timeout_task = None

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        if not isinstance(self.websocket, ASGIWebSocketAdapter):
            await super().run_operation(operation)
            return
        target = StreamTarget(
            query=operation.query,
            variables=operation.variables,
            operation_name=operation.operation_name,
            frame_start=_frame_start("next", operation.id),
            send_text=self.websocket.ws.send_text,
            # (strawberry unregisters an operation as it completes it: one lookup says both)
            is_open=lambda: self.operations.get(operation.id) is operation,
        )
        joined = await join_known_group(self.context, target)
        if joined is None:
            CURRENT_STREAM.set(target)
            await super().run_operation(operation)
            return
        member, after, payload = joined
        try:
            await target.send_text(f"{target.frame_start}{payload}}}")
        except Exception:  # the socket is gone: nothing to answer, the connection ends
            member.leave()
            if self.operations.get(operation.id) is operation:
                del self.operations[operation.id]
            return
        except BaseException:  # cancelled: the operation ended
            member.leave()
            raise
        if not self._park(operation, member, after):
            member.leave()

    async def _send_result_stream(self, operation: Operation[Context, None], result_source: Any) -> None:
        target = CURRENT_STREAM.get()
        if target is None:
            await super()._send_result_stream(operation, result_source)
            return
        parked = False
        try:
            await super()._send_result_stream(operation, _until_handed_off(result_source, target))
            if target.handoff is not None:
                await result_source.aclose()
                parked = self._park(operation, *target.handoff)
                raise _OperationStreamClosed  # strawberry ends the task without a `complete`
        finally:
            if not parked:
                _leave(target)

    def _park(self, operation: Operation[Context, None], member: Member, after: float) -> bool:
        """The group writes from now on; the operation's task may end. A future takes
        its place, which strawberry cancels when the operation ends (complete, or the
        socket closed): the member leaves right then, so the group no longer asks
        whether the operation is still open before each write. False if the operation
        ended already."""
        if operation.completed or self.operations.get(operation.id) is not operation:
            return False
        operation.task = _Parked(member)  # type: ignore[assignment]
        member.target.is_open = None
        member.start(after)
        return True

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
