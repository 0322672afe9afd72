"""The shared graphql-transport-ws client's URL (its protocol is exercised by
test_watcher.py here, and by tests/schema/test_broadcast.py and tests/e2e/test_live.py
through tests/wsclient.py)."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.server import ServerConnection, serve

from watch.client import PROTOCOL, Rejected, Session, ws_url


def test_url_becomes_the_graphql_websocket() -> None:
    assert ws_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/graphql"
    assert ws_url("https://campaigns.example.com/") == "wss://campaigns.example.com/graphql"
    assert ws_url("https://example.com/api/graphql") == "wss://example.com/api/graphql"
    assert ws_url("localhost:8000") == "ws://localhost:8000/graphql"
    assert ws_url("ws://h:1/graphql") == "ws://h:1/graphql"
    with pytest.raises(ValueError):
        ws_url("ftp://example.com")


@pytest.mark.parametrize("refusal", ["close", "message", "no-protocol"])
async def test_a_refused_handshake_is_rejected_with_what_the_server_said(refusal: str) -> None:
    async def handler(ws: ServerConnection) -> None:
        if refusal == "no-protocol":
            await ws.wait_closed()
            return
        assert json.loads(await ws.recv()) == {"type": "connection_init", "payload": {"Authorization": "Bearer k"}}
        if refusal == "close":
            await ws.close(4403, "Forbidden")
        else:
            await ws.send(json.dumps({"type": "connection_error", "payload": {"message": "no"}}))
            await ws.wait_closed()

    protocols = None if refusal == "no-protocol" else [PROTOCOL]
    async with serve(handler, "127.0.0.1", 0, subprotocols=protocols) as server:
        url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/graphql"
        with pytest.raises(Rejected) as rejected:
            async with Session.open(url, "k"):
                pass
    if refusal == "close":
        assert (rejected.value.code, rejected.value.reason, rejected.value.message) == (4403, "Forbidden", None)
    elif refusal == "message":
        assert rejected.value.code is None and rejected.value.message == {
            "type": "connection_error",
            "payload": {"message": "no"},
        }
    else:
        assert rejected.value.reason == f"{url} does not speak graphql-transport-ws"
