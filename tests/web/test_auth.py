"""web/auth.py: every HTTP request needs `Authorization: Bearer <key>` but for the
exact public paths and prefixes and the bare GraphiQL page; a refusal is one 401 in
the one error shape; WebSockets are left to `connection_init`.

The 401s of /graphql and of the CSV routes are in tests/web/test_edges.py and
tests/web/test_csv_*.py; what each key may do once in, in tests/schema/test_scopes.py."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.typing import Subprotocol

from tests.conftest import Api
from tests.wsclient import TRANSPORT_WS, connect
from watch.client import ws_url

VIEWER = {"query": "{ viewer { name } }"}


async def test_a_refusal_is_one_401_naming_the_scheme_and_realm(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json=VIEWER, headers={"Authorization": "Bearer cmp_unknown"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="campaigns"'
    assert response.json() == {
        "errors": [
            {
                "message": "A valid API key is required: Authorization: Bearer <key>.",
                "extensions": {"code": "UNAUTHENTICATED"},
            }
        ]
    }


@pytest.mark.parametrize("path", ["/favicon.ico", "/simulator/v26.0/100000000000001/messages"])
async def test_a_public_path_with_nothing_behind_it_is_found_missing_without_a_key(
    http: httpx.AsyncClient, path: str
) -> None:
    # /favicon.ico has no route; /simulator/ is mounted by `campaigns dev` only
    assert (await http.get(path)).status_code == 404


@pytest.mark.parametrize(
    ("path", "with_key"),
    [
        ("/healthz/", 307),  # redirected to /healthz, but only once the key is checked
        ("/healthzx", 404),
        ("/metrics.txt", 404),
        ("/static", 404),
        ("/staticfiles/x", 404),
        ("/webhooks", 404),
        ("/simulator", 404),
        ("/no/such/page", 404),
    ],
)
async def test_paths_that_only_look_public_need_a_key_before_they_are_found_missing(
    http: httpx.AsyncClient, api: Api, path: str, with_key: int
) -> None:
    refused = await http.get(path)
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    assert (await http.get(path, headers=api.headers)).status_code == with_key


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("POST", {"Accept": "text/html"}),  # an operation, whatever it accepts
        ("GET", {"Accept": "application/json"}),  # not a browser asking for the page
        ("GET", {}),
        ("HEAD", {"Accept": "text/html"}),
    ],
)
async def test_only_the_bare_graphiql_page_is_public(
    http: httpx.AsyncClient, method: str, headers: dict[str, str]
) -> None:
    response = await http.request(method, "/graphql", headers=headers, json=VIEWER if method == "POST" else None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="campaigns"'


@pytest.mark.parametrize("authorization", ["bearer {key}", "BEARER {key}", "Bearer   {key}"])
async def test_the_scheme_is_read_in_any_case_and_the_key_without_surrounding_space(
    http: httpx.AsyncClient, api: Api, authorization: str
) -> None:
    response = await http.post("/graphql", json=VIEWER, headers={"Authorization": authorization.format(key=api.key)})
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"viewer": {"name": "Test workspace"}}}


async def test_a_websocket_upgrade_is_not_asked_for_a_header_the_key_goes_in_connection_init(
    server: str, api: Api
) -> None:
    async with connect(server, api.key, TRANSPORT_WS) as plain:  # no Authorization on the upgrade at all
        await plain.subscribe("{ viewer { name } }")
        assert await plain.data() == {"viewer": {"name": "Test workspace"}}
    # a header on the upgrade is neither needed nor looked at: connection_init decides
    async with ws_connect(
        ws_url(server),
        subprotocols=[Subprotocol(TRANSPORT_WS)],
        additional_headers={"Authorization": "Bearer cmp_unknown"},
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {api.key}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
