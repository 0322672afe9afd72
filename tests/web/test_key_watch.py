"""Revocation reaches every API process within a second: a key revoked through one
process is refused by another (a real `campaigns serve`), and that process closes the
key's open WebSockets with 4403, on both protocols; other keys' sockets stay open."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from services.auth import REVOCATION_S
from services.keys import create_key, revoke_key
from settings import Settings
from tests.conftest import Api
from tests.processes import api_process
from tests.waiting import until
from tests.wsclient import LEGACY_WS, TRANSPORT_WS, connect

ROOT = Path(__file__).resolve().parents[2]
CHANGES = "subscription { campaignStatusChanges { campaign { id } } }"


@pytest.fixture
def second_api(settings: Settings, server: str, tmp_path: Path) -> Iterator[str]:
    """Another API process on the same database and Redis."""
    with api_process(settings, tmp_path) as url:
        yield url


async def test_a_revoked_key_is_refused_by_another_process_within_a_second_and_its_sockets_closed(
    api: Api, second_api: str
) -> None:
    view, secret = await create_key(api.principal, "wallboard", ["read"])
    _, other_secret = await create_key(api.principal, "other", ["read"])
    query = {"query": "{ viewer { id } }"}
    async with httpx.AsyncClient(base_url=second_api, timeout=5) as http:

        async def status() -> int:
            response = await http.post("/graphql", json=query, headers={"Authorization": f"Bearer {secret}"})
            return response.status_code

        assert await status() == 200  # the other process has the key cached now
        async with (
            connect(second_api, secret, TRANSPORT_WS) as modern,
            connect(second_api, secret, LEGACY_WS) as legacy,
            connect(second_api, other_secret, TRANSPORT_WS) as bystander,
        ):
            for session in (modern, legacy, bystander):
                await session.subscribe(CHANGES)
            await revoke_key(api.principal.workspace_id, view.id)  # through this process's code
            revoked = time.monotonic()

            async def refused() -> bool:
                return await status() == 401

            await until(refused, timeout=REVOCATION_S, what="the other process refused the key", every=0.02)
            for session in (modern, legacy):
                with pytest.raises(ConnectionClosed) as closed:
                    while True:  # skip whatever arrives before the close
                        await session.next(timeout=REVOCATION_S)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
            took = time.monotonic() - revoked
            assert took < REVOCATION_S, took
            await bystander.ws.ping()  # the other key's socket is still open
            assert bystander.ws.close_code is None
