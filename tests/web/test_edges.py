"""HTTP edges besides the CSV routes: health, readiness, metrics, request ids, API-key
authentication, GraphiQL, GraphQL safety limits and masking of unexpected errors."""

from __future__ import annotations

import logging

import httpx
import pytest
import strawberry
from redis.asyncio import Redis
from starlette.applications import Starlette
from strawberry.asgi import GraphQL

from domain.errors import NotFound
from models import Campaign
from schema.extensions import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS, extensions
from tests.conftest import Api, serve
from web.observability import ObservabilityMiddleware

# --- health, readiness, metrics ------------------------------------------------------


async def test_healthz(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_database_and_redis_answer(http: httpx.AsyncClient) -> None:
    response = await http.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"database": "ok", "redis": "ok"}


async def test_readyz_names_redis_when_it_does_not_answer(
    http: httpx.AsyncClient, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0")
    # setitem on the State's dict: pytest 9's setattr would record the old value as
    # missing (State keeps it outside __dict__) and delete it on undo
    monkeypatch.setitem(app.state._state, "redis", dead)
    try:
        response = await http.get("/readyz")
    finally:
        monkeypatch.undo()
        await dead.aclose()
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error: "), body
    # and readiness comes back with Redis
    assert (await http.get("/readyz")).status_code == 200


async def test_metrics_is_prometheus_text_counting_requests(http: httpx.AsyncClient) -> None:
    await http.get("/healthz")
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE campaigns_http_requests_total counter" in text
    assert 'campaigns_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "campaigns_http_request_duration_seconds_bucket" in text


async def test_metrics_route_labels_do_not_carry_ids(http: httpx.AsyncClient) -> None:
    await http.get("/campaigns/abc123/report.csv")  # 401, but counted
    await http.get("/no/such/page/42")
    text = (await http.get("/metrics")).text
    assert 'route="/campaigns/{id}/report.csv"' in text
    assert 'route="other"' in text
    assert "abc123" not in text
    assert "/no/such/page" not in text


# --- request ids ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/graphql", "/campaigns/x/report.csv"])
async def test_every_response_carries_a_request_id(http: httpx.AsyncClient, path: str) -> None:
    first = await http.get(path)
    second = await http.get(path)
    assert first.headers.get("x-request-id")
    assert second.headers.get("x-request-id")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_given_request_id_is_echoed(http: httpx.AsyncClient, api: Api) -> None:
    response = await http.get("/healthz", headers={"X-Request-ID": "req-abc-123"})
    assert response.headers["x-request-id"] == "req-abc-123"
    response = await http.post(
        "/graphql",
        json={"query": "{ viewer { name } }"},
        headers={**api.headers, "X-Request-ID": "req-graphql-1"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-graphql-1"


async def test_a_non_ascii_request_id_is_echoed_byte_for_byte(http: httpx.AsyncClient) -> None:
    # header values are bytes (Latin-1 on the wire): the echo must be the same bytes,
    # not their UTF-8 re-encoding
    response = await http.get("/healthz", headers={b"X-Request-ID": b"req-\xe9"})
    echoed = [v for k, v in response.headers.raw if k.lower() == b"x-request-id"]
    assert echoed == [b"req-\xe9"]


@pytest.mark.parametrize("given", ["tab\there", ""])
async def test_an_unprintable_or_empty_request_id_is_replaced(http: httpx.AsyncClient, given: str) -> None:
    response = await http.get("/healthz", headers={"X-Request-ID": given})
    generated = response.headers["x-request-id"]
    assert generated != given
    assert len(generated) == 16 and int(generated, 16) >= 0


async def test_an_overlong_request_id_is_cut(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz", headers={"X-Request-ID": "r" * 200})
    assert response.headers["x-request-id"] == "r" * 64


# --- authentication ------------------------------------------------------------------


async def test_graphql_without_key_is_401_with_www_authenticate(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json={"query": "{ viewer { name } }"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in body
    assert response.headers.get("x-request-id")


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-real-key", "Bearer", "Basic dXNlcjpwYXNz", "not-even-a-scheme"],
)
async def test_graphql_with_bad_key_is_401(http: httpx.AsyncClient, authorization: str) -> None:
    response = await http.post(
        "/graphql", json={"query": "{ viewer { name } }"}, headers={"Authorization": authorization}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_graphql_with_key_answers(api: Api) -> None:
    data = await api.gql("{ viewer { name } }")
    assert data["viewer"]["name"] == "Test workspace"


async def test_graphiql_page_is_served_without_key(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_graphql_get_query_without_key_is_401(http: httpx.AsyncClient) -> None:
    # only the bare HTML page is public; a query over GET is not
    response = await http.get("/graphql", params={"query": "{ viewer { name } }"}, headers={"Accept": "text/html"})
    assert response.status_code == 401


# --- GraphQL safety limits on the served schema --------------------------------------


def _nested(levels: int, leaf: str = "id") -> str:
    """`{ campaign(id: "x") { ... } }` with `levels` fields holding a selection set."""
    query = leaf
    for _ in range(levels - 1):
        query = f"f {{ {query} }}"
    return f'{{ campaign(id: "x") {{ {query} }} }}'


def _limit_error(body: dict[str, object], needle: str) -> None:
    assert body.get("data") is None, body
    errors = body["errors"]
    assert isinstance(errors, list)
    assert any(needle in e["message"] for e in errors), errors


async def test_a_query_deeper_than_the_limit_is_refused(api: Api) -> None:
    body = await api.raw(_nested(MAX_DEPTH + 2))
    _limit_error(body, f"exceeds maximum operation depth of {MAX_DEPTH}")


async def test_more_aliases_than_the_limit_is_refused_and_nothing_runs(api: Api) -> None:
    create = 'c{i}: createCampaign(input: {{name: "n", body: "b"}}) {{ campaign {{ id }} }}'
    many = "mutation { " + " ".join(create.format(i=i) for i in range(MAX_ALIASES + 1)) + " }"
    body = await api.raw(many)
    _limit_error(body, f"aliases found. Allowed: {MAX_ALIASES}")
    assert await Campaign.filter(workspace_id=api.principal.workspace_id).count() == 0
    # at the limit it runs
    reads = "{ " + " ".join(f"v{i}: viewer {{ name }}" for i in range(MAX_ALIASES)) + " }"
    data = await api.gql(reads)
    assert len(data) == MAX_ALIASES


async def test_more_tokens_than_the_limit_is_refused_and_nothing_runs(api: Api) -> None:
    campaign = await api.create_campaign()
    recipients = ", ".join(f'{{phone: "+1415{2000000 + i:07d}"}}' for i in range(MAX_TOKENS // 4))
    mutation = (
        f'mutation {{ addRecipients(input: {{campaignId: "{campaign["id"]}", recipients: [{recipients}]}})'
        " { added } }"
    )
    body = await api.raw(mutation)
    _limit_error(body, f"more than {MAX_TOKENS} tokens")
    data = await api.gql("query($id: ID!) { campaign(id: $id) { stats { total } } }", id=campaign["id"])
    assert data["campaign"]["stats"]["total"] == 0


# --- the same extensions on a tiny inline schema: depth boundary, masking ------------


@strawberry.type
class Tree:
    value: int

    @strawberry.field
    def child(self) -> Tree:
        CALLS.append("child")
        return Tree(value=self.value + 1)


CALLS: list[str] = []


@strawberry.type
class Query:
    @strawberry.field
    def tree(self) -> Tree:
        CALLS.append("tree")
        return Tree(value=0)

    @strawberry.field
    def broken(self) -> str:
        raise RuntimeError("secret detail")

    @strawberry.field
    def refused(self) -> str:
        raise NotFound("No campaign with id 'x'.", ("id",))

    @strawberry.field
    def fine(self) -> str:
        return "ok"


@pytest.fixture(scope="module")
def tiny_app() -> ObservabilityMiddleware:
    tiny = strawberry.Schema(query=Query, extensions=extensions())
    return ObservabilityMiddleware(GraphQL(tiny))


def _tree(levels: int) -> str:
    """A query whose deepest field with a selection set is at nesting level `levels`."""
    query = "value"
    for _ in range(levels - 1):
        query = f"child {{ value {query} }}"
    return f"{{ tree {{ {query} }} }}"


async def test_depth_limit_boundary_and_nothing_runs(tiny_app: ObservabilityMiddleware) -> None:
    async with serve(tiny_app) as url, httpx.AsyncClient(base_url=url) as client:
        CALLS.clear()
        ok = (await client.post("/", json={"query": _tree(MAX_DEPTH)})).json()
        assert "errors" not in ok, ok
        assert CALLS, "the query at the limit ran"
        CALLS.clear()
        response = await client.post("/", json={"query": _tree(MAX_DEPTH + 1)})
    assert response.status_code == 200
    _limit_error(response.json(), f"exceeds maximum operation depth of {MAX_DEPTH}")
    assert CALLS == []


async def test_unexpected_errors_are_masked_with_the_request_id_and_logged(
    tiny_app: ObservabilityMiddleware, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="campaigns.graphql")
    async with serve(tiny_app) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/", json={"query": "{ fine broken }"}, headers={"X-Request-ID": "masked-req-7"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "masked-req-7"
    body = response.json()
    assert body["data"] is None or body["data"].get("broken") is None
    [error] = body["errors"]
    assert "Unexpected error (request id masked-req-7" in error["message"]
    assert "secret detail" not in response.text
    assert "RuntimeError" not in response.text
    assert error["extensions"] == {"code": "INTERNAL", "requestId": "masked-req-7"}
    assert error["path"] == ["broken"]
    records = [r for r in caplog.records if r.name == "campaigns.graphql"]
    assert records, caplog.records
    record = records[-1]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert str(record.exc_info[1]) == "secret detail"
    assert getattr(record, "request_id", None) == "masked-req-7"


async def test_domain_errors_are_not_masked(
    tiny_app: ObservabilityMiddleware, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="campaigns.graphql")
    async with serve(tiny_app) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/", json={"query": "{ refused }"})
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["message"] == "No campaign with id 'x'."
    assert error["extensions"] == {"code": "NOT_FOUND", "field": ["id"]}
    assert not [r for r in caplog.records if r.name == "campaigns.graphql"]


async def test_graphql_syntax_errors_are_not_masked(tiny_app: ObservabilityMiddleware) -> None:
    async with serve(tiny_app) as url, httpx.AsyncClient(base_url=url) as client:
        body = (await client.post("/", json={"query": "{ nosuchfield }"})).json()
    assert body.get("data") is None
    assert "nosuchfield" in body["errors"][0]["message"]
    assert "Unexpected error" not in body["errors"][0]["message"]
