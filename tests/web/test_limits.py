"""web/limits.py: a /graphql body over MAX_GRAPHQL_BODY_BYTES is refused with 413 in
the one error shape, whether it says its length or arrives chunked; a body at the cap
is served."""

from __future__ import annotations

from collections.abc import AsyncIterator

from settings import Settings
from tests.conftest import Api

LIMIT = Settings().max_graphql_body_bytes


def _padded(size: int) -> bytes:
    """A valid GraphQL request of exactly `size` bytes (the padding is a comment)."""
    head, tail = b'{"query": "{ viewer { id } } #', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def test_a_body_over_the_cap_is_refused_by_its_length(api: Api) -> None:
    response = await api.http.post(
        "/graphql", content=_padded(LIMIT + 1), headers=api.headers | {"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "field": ["body"]}
    assert f"{LIMIT:,} bytes" in error["message"] and "MAX_GRAPHQL_BODY_BYTES" in error["message"]


async def test_a_chunked_body_over_the_cap_is_refused_as_it_arrives(api: Api) -> None:
    body = _padded(LIMIT + 1)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = await api.http.post(
        "/graphql", content=chunks(), headers=api.headers | {"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"


async def test_a_body_at_the_cap_is_served(api: Api) -> None:
    response = await api.http.post(
        "/graphql", content=_padded(LIMIT), headers=api.headers | {"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text[:300]
    assert response.json()["data"]["viewer"]["id"]
