"""web/graphql_http.py: GraphQL over HTTP as the spec draft says. Accept negotiation,
request errors without `data` (400 with graphql-response+json, 200 with legacy
application/json), field errors as 200 results, refusals before there is a GraphQL
request in the one error shape, GET for queries only (a mutation is 405, Allow: POST)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from strawberry.http import GraphQLHTTPResponse

from domain.ids import expect_id
from models import Campaign
from schema.extensions import MAX_DEPTH
from tests.conftest import Api
from web.graphql_http import GRAPHQL_RESPONSE_JSON, JSON, negotiate, status_of

GQL = {"Accept": GRAPHQL_RESPONSE_JSON}
LEGACY = {"Accept": JSON}
BOTH = {"Accept": f"{GRAPHQL_RESPONSE_JSON}, {JSON};q=0.9"}


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (JSON, JSON),
        ("APPLICATION/JSON; charset=utf-8", JSON),
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8", GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, {JSON};q=0.9", GRAPHQL_RESPONSE_JSON),
        (f"{JSON}, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON),  # equal: ours preferred
        (f"{JSON}, {GRAPHQL_RESPONSE_JSON};q=0.5", JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, */*", GRAPHQL_RESPONSE_JSON),  # named beats wildcard
        (f"{JSON};q=0, */*", GRAPHQL_RESPONSE_JSON),  # refused by name, allowed by wildcard
        ("text/html, application/xhtml+xml, */*;q=0.8", JSON),  # a browser's
        (f"text/html, {GRAPHQL_RESPONSE_JSON};q=0.1", GRAPHQL_RESPONSE_JSON),
        ("text/html", None),
        ("image/png, text/*", None),
        (f"{JSON};q=0", None),
        (f"{GRAPHQL_RESPONSE_JSON};q=0, {JSON};q=0", None),
        ("garbage", None),
        (f"{JSON};q=nonsense", None),  # an unreadable quality allows nothing
    ],
)
def test_negotiation(accept: str | None, chosen: str | None) -> None:
    assert negotiate(accept) == chosen


def test_status_of_a_result() -> None:
    data: GraphQLHTTPResponse = {"data": None, "errors": [{"message": "x", "path": ["a"]}]}
    request_error: GraphQLHTTPResponse = {"errors": [{"message": "x"}]}
    internal: GraphQLHTTPResponse = {"errors": [{"message": "x", "extensions": {"code": "INTERNAL"}}]}
    assert status_of(data, GRAPHQL_RESPONSE_JSON) == 200
    assert status_of(request_error, GRAPHQL_RESPONSE_JSON) == 400
    assert status_of(internal, GRAPHQL_RESPONSE_JSON) == 500  # the server's fault, not the request's
    assert status_of(request_error, JSON) == 200


async def _post(api: Api, accept: dict[str, str], query: str, **body: Any) -> httpx.Response:
    return await api.http.post("/graphql", json={"query": query, **body}, headers=api.headers | accept)


def _media(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


async def test_a_result_comes_in_the_negotiated_type_in_utf8(api: Api) -> None:
    for accept, media in ((GQL, GRAPHQL_RESPONSE_JSON), (BOTH, GRAPHQL_RESPONSE_JSON), (LEGACY, JSON), ({}, JSON)):
        response = await _post(api, accept, "{ viewer { name } }")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == f"{media}; charset=utf-8"
        assert "accept" in response.headers["vary"].lower()
        assert response.json() == {"data": {"viewer": {"name": "Test workspace"}}}


REQUEST_ERRORS = {
    "syntax": ({"query": "{ viewer { name "}, "Syntax Error"),
    "validation": ({"query": "{ viewer { nope } }"}, "Cannot query field 'nope'"),
    "depth limit": (
        {"query": '{ campaign(id: "x") { ' + "f { " * MAX_DEPTH + "id" + " }" * MAX_DEPTH + " } }"},
        "depth",
    ),
    "variables": ({"query": "query($id: ID!) { campaign(id: $id) { id } }", "variables": {"id": None}}, "$id"),
    "unknown operation": ({"query": "query A { viewer { id } }", "operationName": "B"}, "no operation named 'B'"),
}


@pytest.mark.parametrize("case", sorted(REQUEST_ERRORS))
async def test_a_request_error_has_no_data_and_is_400_with_graphql_response_json(api: Api, case: str) -> None:
    body, needle = REQUEST_ERRORS[case]
    response = await api.http.post("/graphql", json=body, headers=api.headers | GQL)
    assert response.status_code == 400, response.text
    assert _media(response) == GRAPHQL_RESPONSE_JSON
    answer = response.json()
    assert "data" not in answer, answer
    assert any(needle in e["message"] for e in answer["errors"]), answer


@pytest.mark.parametrize("case", sorted(REQUEST_ERRORS))
async def test_a_request_error_is_200_without_data_for_a_legacy_client(api: Api, case: str) -> None:
    body, needle = REQUEST_ERRORS[case]
    response = await api.http.post("/graphql", json=body, headers=api.headers | LEGACY)
    assert response.status_code == 200, response.text
    assert _media(response) == JSON
    answer = response.json()
    assert "data" not in answer, answer
    assert any(needle in e["message"] for e in answer["errors"]), answer


async def test_an_unknown_operation_names_the_operation_name(api: Api) -> None:
    response = await _post(api, GQL, "query A { viewer { id } }", operationName="B")
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST", "field": ["operationName"]}


async def test_a_field_error_is_an_execution_result_with_data_and_200(api: Api) -> None:
    # campaigns is non-null, so its error nulls the whole data: still a result (data: null)
    response = await _post(api, GQL, "{ viewer { name } campaigns(first: -1) { totalCount } }")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["data"] is None
    [error] = answer["errors"]
    assert error["path"] == ["campaigns"] and error["extensions"]["field"] == ["first"]
    partial = await _post(api, GQL, '{ viewer { name } campaign(id: "x") { id } }')
    assert partial.status_code == 200 and partial.json() == {
        "data": {"viewer": {"name": "Test workspace"}, "campaign": None}
    }


async def test_a_query_over_get_is_served_with_its_variables(api: Api) -> None:
    campaign = await api.create_campaign(name="Over GET")
    params = {"query": "query($id: ID!) { campaign(id: $id) { name } }", "variables": f'{{"id": "{campaign["id"]}"}}'}
    for accept in (GQL, LEGACY):
        response = await api.http.get("/graphql", params=params, headers=api.headers | accept)
        assert response.status_code == 200, response.text
        assert response.json() == {"data": {"campaign": {"name": "Over GET"}}}
    # an empty parameter is an absent one
    empty = {"query": "{ viewer { name } }", "variables": "", "operationName": "", "extensions": ""}
    response = await api.http.get("/graphql", params=empty, headers=api.headers | GQL)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("accept", [GQL, LEGACY])
async def test_a_mutation_over_get_is_405_with_allow_post_and_nothing_runs(api: Api, accept: dict[str, str]) -> None:
    mutation = 'mutation { createCampaign(input: {name: "Sneaky", body: "b"}) { campaign { id } } }'
    response = await api.http.get("/graphql", params={"query": mutation}, headers=api.headers | accept)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    answer = response.json()
    assert "data" not in answer
    assert answer["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert "POST" in answer["errors"][0]["message"]
    assert await Campaign.filter(workspace_id=api.principal.workspace_id).count() == 0
    # the same document picked by operationName from a query-and-mutation document
    both = "query Q { viewer { id } } " + mutation.replace("mutation", "mutation M", 1)
    picked = await api.http.get("/graphql", params={"query": both, "operationName": "M"}, headers=api.headers)
    assert picked.status_code == 405
    read = await api.http.get("/graphql", params={"query": both, "operationName": "Q"}, headers=api.headers)
    assert read.status_code == 200, read.text


async def test_a_subscription_over_http_is_a_request_error_pointing_to_the_websocket(api: Api) -> None:
    campaign = await api.create_campaign()
    query = "subscription($id: ID!) { campaignProgress(id: $id) { status } }"
    response = await _post(api, GQL, query, variables={"id": campaign["id"]})
    assert response.status_code == 400, response.text
    answer = response.json()
    assert "data" not in answer and "WebSocket" in answer["errors"][0]["message"]
    legacy = await _post(api, LEGACY, query, variables={"id": campaign["id"]})
    assert legacy.status_code == 200 and "data" not in legacy.json()


async def test_an_accept_we_cannot_answer_is_406_in_the_one_shape(api: Api) -> None:
    response = await _post(api, {"Accept": "text/plain"}, "{ viewer { name } }")
    assert response.status_code == 406, response.text
    assert _media(response) == JSON
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "NOT_ACCEPTABLE", "field": ["Accept"]}
    assert GRAPHQL_RESPONSE_JSON in error["message"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (None, b'{"query": "{ viewer { id } }"}'),
        ("text/plain", b'{"query": "{ viewer { id } }"}'),
        ("application/json; charset=latin-1", b'{"query": "{ viewer { id } }"}'),
        ("multipart/form-data; boundary=x", b"--x--"),
    ],
)
async def test_a_body_that_is_not_json_by_its_content_type_is_415(
    api: Api, content_type: str | None, body: bytes
) -> None:
    headers = api.headers | ({"Content-Type": content_type} if content_type else {})
    response = await api.http.post("/graphql", content=body, headers=headers)
    assert response.status_code == 415, response.text
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "UNSUPPORTED_MEDIA_TYPE", "field": ["Content-Type"]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"query": ', "body"),
        (b"", "body"),
        (b"[]", "body"),
        (b'"{ viewer { id } }"', "body"),
        (b'{"qeury": "{ viewer { id } }"}', "query"),
        (b'{"query": ""}', "query"),
        (b'{"query": 7}', "query"),
        (b'{"query": "{ viewer { id } }", "operationName": 0}', "operationName"),
        (b'{"query": "{ viewer { id } }", "variables": [7]}', "variables"),
        (b'{"query": "{ viewer { id } }", "extensions": "x"}', "extensions"),
    ],
)
@pytest.mark.parametrize("accept", [GQL, LEGACY])
async def test_a_malformed_request_is_400_naming_the_field(
    api: Api, body: bytes, field: str, accept: dict[str, str]
) -> None:
    headers = api.headers | accept | {"Content-Type": "application/json"}
    response = await api.http.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert _media(response) == JSON
    answer = response.json()
    assert "data" not in answer
    [error] = answer["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST", "field": [field]}, error


async def test_variables_over_get_that_are_not_json_name_the_parameter(api: Api) -> None:
    params = {"query": "query($id: ID!) { campaign(id: $id) { id } }", "variables": "{not json"}
    response = await api.http.get("/graphql", params=params, headers=api.headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"] == {"code": "BAD_REQUEST", "field": ["variables"]}


async def test_null_optional_parameters_are_absent_ones(api: Api) -> None:
    response = await _post(api, GQL, "{ viewer { name } }", variables=None, operationName=None, extensions=None)
    assert response.status_code == 200 and "errors" not in response.json()


async def test_other_methods_are_405_with_allow(api: Api) -> None:
    for method in ("HEAD", "PUT", "DELETE"):
        response = await api.http.request(method, "/graphql", headers=api.headers)
        assert response.status_code == 405, (method, response.text)
        assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "POST"}, method


async def test_a_created_campaign_is_created_once_whatever_the_media_type(api: Api) -> None:
    # mutations are answered like queries: the Accept changes the envelope, not the effect
    mutation = 'mutation { createCampaign(input: {name: "n", body: "b"}) { campaign { id } userErrors { code } } }'
    response = await _post(api, GQL, mutation)
    assert response.status_code == 200, response.text
    gid = response.json()["data"]["createCampaign"]["campaign"]["id"]
    assert await Campaign.filter(id=expect_id(gid, "Campaign")).count() == 1
