"""schema/extensions.py: which errors are the client's and which are masked as bugs,
a fresh Guard per operation over caches shared by every request, and the limit rules
built once so validation results are cached.

The limits themselves and the masking of one error at a time are in
tests/web/test_edges.py."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import strawberry
from graphql import GraphQLError
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache

from domain.errors import NotFound, ValidationFailed
from schema import extensions as guard_module
from schema.extensions import CACHED_DOCUMENTS, MAX_TOKENS, Guard, extensions, is_expected
from tests.conftest import Api, serve
from tests.schema.states import future
from web.observability import ObservabilityMiddleware


def test_client_errors_are_expected_and_anything_else_is_a_bug() -> None:
    assert is_expected(GraphQLError("Syntax Error: Expected Name, found <EOF>."))
    assert is_expected(GraphQLError("No campaign.", original_error=NotFound("No campaign.", ("id",))))
    assert is_expected(GraphQLError("bad input", original_error=ValidationFailed("bad")))
    assert is_expected(GraphQLError("Variable '$at' …", original_error=GraphQLError("Expected type DateTime")))
    assert not is_expected(GraphQLError("boom", original_error=RuntimeError("boom")))
    assert not is_expected(GraphQLError("key", original_error=KeyError("workspace_id")))


def test_each_operation_gets_a_new_guard_over_caches_shared_by_every_request() -> None:
    first, second = [f() for f in extensions()], [f() for f in extensions()]
    assert [type(e) for e in first] == [Guard]  # one extension: its hooks cost once, not seven times
    assert all(a is not b for a, b in zip(first, second, strict=True))  # no per-operation state shared
    # strawberry's module-level caches, the ones a ParserCache or ValidationCache of that size uses
    assert guard_module._parse is ParserCache(maxsize=CACHED_DOCUMENTS).cached_parse_document
    assert guard_module._validate is ValidationCache(maxsize=CACHED_DOCUMENTS).cached_validate_document


async def test_the_guard_sets_the_token_limit_and_the_same_limit_rules_for_every_operation() -> None:
    seen: list[tuple[object, object]] = []

    class Watch(SchemaExtension):
        def on_validate(self) -> Iterator[None]:  # entered after the guard's: its settings are in
            context = self.execution_context
            seen.append((context.parse_options.get("max_tokens"), context.validation_rules))
            yield

    watched = strawberry.Schema(query=Query, extensions=[*extensions(), Watch])
    for _ in range(2):
        assert (await watched.execute("{ fine }")).data == {"fine": "ok"}
    (tokens, rules), (tokens_again, rules_again) = seen
    assert tokens == tokens_again == MAX_TOKENS
    assert isinstance(rules, tuple) and isinstance(rules_again, tuple)
    assert set(guard_module._LIMIT_RULES) <= set(rules)  # the depth and alias limits
    assert all(a is b for a, b in zip(rules, rules_again, strict=True))  # the same rule classes: one cache key


async def test_a_repeated_query_is_parsed_and_validated_once(api: Api) -> None:
    parse: Any = ParserCache(maxsize=1024).cached_parse_document  # functools.lru_cache wrappers
    validate: Any = ValidationCache(maxsize=1024).cached_validate_document
    query = f"{{ viewer {{ name }} }} # {uuid.uuid4()}"  # a text no request sent before
    await api.gql(query)
    parsed, validated = parse.cache_info(), validate.cache_info()
    await api.gql(query)
    assert parse.cache_info().hits == parsed.hits + 1
    assert parse.cache_info().misses == parsed.misses
    assert validate.cache_info().hits == validated.hits + 1
    assert validate.cache_info().misses == validated.misses


@strawberry.type
class Query:
    @strawberry.field
    def fine(self) -> str:
        return "ok"

    @strawberry.field
    def broken(self) -> str | None:
        raise RuntimeError("secret detail")

    @strawberry.field
    def refused(self) -> str | None:
        raise NotFound("No campaign with id 'x'.", ("id",))


async def test_in_one_answer_only_the_unexpected_error_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="campaigns.graphql")
    tiny = ObservabilityMiddleware(GraphQL(strawberry.Schema(query=Query, extensions=extensions())))
    async with serve(tiny) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/", json={"query": "{ fine broken refused }"}, headers={"X-Request-ID": "mix-1"})
    body = response.json()
    assert body["data"] == {"fine": "ok", "broken": None, "refused": None}
    errors = {tuple(e["path"]): e for e in body["errors"]}
    assert errors[("broken",)]["message"] == "Unexpected error (request id mix-1)."
    assert errors[("broken",)]["extensions"] == {"code": "INTERNAL", "requestId": "mix-1"}
    assert errors[("refused",)]["message"] == "No campaign with id 'x'."
    assert errors[("refused",)]["extensions"] == {"code": "NOT_FOUND", "field": ["id"]}
    assert "secret detail" not in response.text
    [logged] = [r for r in caplog.records if r.name == "campaigns.graphql"]  # the bug only, once
    assert logged.getMessage() == "unexpected error in broken"


async def test_a_literal_its_scalar_refuses_is_the_clients_error_not_a_bug(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Input coercion is the client's (is_expected's docstring): a DateTime without an
    offset is refused with the scalar's message whether it comes as a variable (see
    tests/schema/test_bad_input.py) or written in the document."""
    caplog.set_level(logging.ERROR, logger="campaigns.graphql")
    campaign = await api.ready_campaign(1)
    ok = await api.gql(
        f'mutation {{ scheduleCampaign(id: "{campaign["id"]}", scheduledAt: "{future()}") {{ userErrors {{ code }} }} }}'
    )
    assert ok["scheduleCampaign"]["userErrors"] == []  # a literal with an offset is taken
    body = await api.raw(
        f'mutation {{ rescheduleCampaign(id: "{campaign["id"]}", scheduledAt: "2030-01-01T09:00:00")'
        " { userErrors { code } } }"
    )
    [error] = body["errors"]
    assert error.get("extensions", {}).get("code") != "INTERNAL", error
    assert "has no UTC offset" in error["message"], error
    assert [r.getMessage() for r in caplog.records if r.name == "campaigns.graphql"] == []


async def test_a_document_of_several_operations_needs_an_operation_name(api: Api) -> None:
    document = 'query A { viewer { name } } mutation B { createCampaign(input: {name: "x", body: "y"}) { userErrors { code } } }'
    headers = api.headers | {"Accept": "application/graphql-response+json"}
    refused = await api.http.post("/graphql", json={"query": document}, headers=headers)
    assert refused.status_code == 400 and "data" not in refused.json()
    (error,) = refused.json()["errors"]
    assert (
        error["extensions"] == {"code": "BAD_REQUEST", "field": ["operationName"]}
        and "operationName" in error["message"]
    )
    chosen = await api.http.post("/graphql", json={"query": document, "operationName": "A"}, headers=headers)
    assert chosen.status_code == 200 and chosen.json() == {"data": {"viewer": {"name": "Test workspace"}}}
    campaigns = await api.gql("{ campaigns { totalCount } }")
    assert campaigns["campaigns"]["totalCount"] == 0  # mutation B never ran
