"""API keys through GraphQL: apiKeys, createApiKey (the secret once), revokeApiKey
(immediate here, the last admin key kept), bad input reported whole with nothing
written, and two revocations racing for the last two admin keys."""

from __future__ import annotations

import asyncio
from typing import Any

from models import ApiKey
from services.auth import authenticate
from tests.conftest import Api

FIELDS = "id name prefix scopes createdAt lastUsedAt revokedAt"
CREATE = f"""mutation($name: String!, $scopes: [ApiKeyScope!]!) {{
  createApiKey(name: $name, scopes: $scopes) {{ apiKey {{ {FIELDS} }} secret userErrors {{ field message code }} }}
}}"""
REVOKE = f"""mutation($id: ID!) {{
  revokeApiKey(id: $id) {{ apiKey {{ {FIELDS} }} userErrors {{ field message code }} }}
}}"""
LIST = f"{{ apiKeys {{ {FIELDS} }} }}"


async def _create(api: Api, name: str = "reporting", scopes: list[str] | None = None) -> dict[str, Any]:
    data = await api.gql(CREATE, name=name, scopes=["READ"] if scopes is None else scopes)
    return data["createApiKey"]


async def _count(api: Api) -> int:
    return await ApiKey.filter(workspace_id=api.principal.workspace_id).count()


async def test_a_created_key_works_with_its_scopes_and_its_secret_is_never_listed(api: Api) -> None:
    made = await _create(api, "dashboards", ["READ", "SEND"])
    assert made["userErrors"] == [] and made["secret"].startswith(made["apiKey"]["prefix"])
    assert made["apiKey"]["scopes"] == ["READ", "SEND"] and made["apiKey"]["revokedAt"] is None
    listed = (await api.gql(LIST))["apiKeys"]
    assert listed[0] == made["apiKey"]  # newest first, the same view, no secret anywhere
    assert made["secret"] not in str(listed)
    node = await api.gql(f"query($id: ID!) {{ node(id: $id) {{ ... on ApiKey {{ {FIELDS} }} }} }}", id=listed[0]["id"])
    assert node["node"] == made["apiKey"]
    principal = await authenticate(made["secret"])
    assert principal is not None and principal.actor == "dashboards"
    assert {s.value for s in principal.scopes} == {"read", "send"}


async def test_last_used_at_is_set_when_a_key_is_used(api: Api) -> None:
    made = await _create(api)
    assert made["apiKey"]["lastUsedAt"] is None
    response = await api.http.post(
        "/graphql", json={"query": "{ viewer { id } }"}, headers={"Authorization": f"Bearer {made['secret']}"}
    )
    assert response.status_code == 200
    listed = {k["id"]: k for k in (await api.gql(LIST))["apiKeys"]}
    assert listed[made["apiKey"]["id"]]["lastUsedAt"] is not None


async def test_a_revoked_key_is_refused_at_once_in_this_process(api: Api) -> None:
    made = await _create(api)
    headers = {"Authorization": f"Bearer {made['secret']}"}
    assert (await api.http.post("/graphql", json={"query": "{ viewer { id } }"}, headers=headers)).status_code == 200
    revoked = (await api.gql(REVOKE, id=made["apiKey"]["id"]))["revokeApiKey"]
    assert revoked["userErrors"] == [] and revoked["apiKey"]["revokedAt"] is not None
    refused = await api.http.post("/graphql", json={"query": "{ viewer { id } }"}, headers=headers)
    assert refused.status_code == 401
    again = (await api.gql(REVOKE, id=made["apiKey"]["id"]))["revokeApiKey"]  # changes nothing
    assert again["userErrors"] == [] and again["apiKey"]["revokedAt"] == revoked["apiKey"]["revokedAt"]


async def test_the_last_admin_key_cannot_be_revoked_through_the_api(api: Api) -> None:
    mine = (await api.gql(LIST))["apiKeys"]
    assert [k["scopes"] for k in mine] == [["READ", "WRITE", "SEND", "ADMIN"]]
    await _create(api, "reader", ["READ"])
    refused = (await api.gql(REVOKE, id=mine[0]["id"]))["revokeApiKey"]
    assert refused["apiKey"] is None
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("CONFLICT", ["id"])]
    assert "last key with the admin scope" in refused["userErrors"][0]["message"]
    assert await authenticate(api.key) is not None


async def test_two_revocations_racing_for_the_last_two_admin_keys_leave_one(api: Api) -> None:
    second = await _create(api, "admin-2", ["ADMIN"])
    first = (await api.gql(LIST))["apiKeys"][-1]
    results = await asyncio.gather(
        api.gql(REVOKE, id=first["id"]), api.gql(REVOKE, id=second["apiKey"]["id"]), return_exceptions=True
    )
    errors = [r["revokeApiKey"]["userErrors"] for r in results if isinstance(r, dict)]
    assert len(errors) == 2 and sorted(len(e) for e in errors) == [0, 1], results
    live_admins = await ApiKey.filter(
        workspace_id=api.principal.workspace_id, revoked_at__isnull=True, scopes__contains="admin"
    ).count()
    assert live_admins == 1


async def test_bad_input_is_reported_field_by_field_and_nothing_is_written(api: Api) -> None:
    before = await _count(api)
    both = await _create(api, "  ", [])
    assert both["apiKey"] is None and both["secret"] is None
    assert [(e["code"], e["field"]) for e in both["userErrors"]] == [
        ("VALIDATION", ["name"]),
        ("VALIDATION", ["scopes"]),
    ]
    long = await _create(api, "k" * 201, ["READ"])
    assert [(e["field"], e["message"]) for e in long["userErrors"]] == [(["name"], "name is at most 200 characters.")]
    body = await api.raw(CREATE, name="x", scopes=["OWNER"])  # not a scope: the schema refuses it
    assert "ApiKeyScope" in body["errors"][0]["message"]
    assert await _count(api) == before


async def test_revoking_an_unknown_or_foreign_key_is_not_found(api: Api, other_api: Api) -> None:
    theirs = (await other_api.gql(LIST))["apiKeys"][0]
    for gid in (theirs["id"], "nonsense", "QXBpS2V5Ojk5OTk5OTk5"):
        refused = (await api.gql(REVOKE, id=gid))["revokeApiKey"]
        assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("NOT_FOUND", ["id"])], gid
    assert await authenticate(other_api.key) is not None
