"""Every HTTP edge refuses in one shape, GraphQL's: a missing key, a refused upload, a
missing campaign and a refused webhook read the same as an error from /graphql."""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.responses import Response

from domain.errors import NotFound
from tests.conftest import Api
from web.errors import HttpErrorCode, domain_error_response, error_body


def the_error(response: httpx.Response | Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json() if isinstance(response, httpx.Response) else json.loads(bytes(response.body))
    [error] = body["errors"]
    assert set(error) == {"message", "extensions"}, error
    assert error["message"].endswith("."), error
    return error


def test_error_body_leaves_out_an_absent_field() -> None:
    assert json.loads(error_body("No.", HttpErrorCode.BAD_REQUEST)) == {
        "errors": [{"message": "No.", "extensions": {"code": "BAD_REQUEST"}}]
    }
    assert json.loads(error_body("No.", HttpErrorCode.BAD_REQUEST, ("csv", "row"))) == {
        "errors": [{"message": "No.", "extensions": {"code": "BAD_REQUEST", "field": ["csv", "row"]}}]
    }


def test_a_domain_error_keeps_its_code_field_and_status() -> None:
    error = the_error(domain_error_response(NotFound("No campaign with id 'x'.", ("id",))), 404)
    assert error == {"message": "No campaign with id 'x'.", "extensions": {"code": "NOT_FOUND", "field": ["id"]}}


async def test_every_edge_answers_the_one_shape(api: Api, http: httpx.AsyncClient) -> None:
    unauthenticated = await http.post(
        "/campaigns/1/recipients", content=b"phone\n", headers={"Content-Type": "text/csv"}
    )
    assert the_error(unauthenticated, 401)["extensions"] == {"code": "UNAUTHENTICATED"}
    assert unauthenticated.headers["www-authenticate"].startswith("Bearer")

    auth = {"Authorization": f"Bearer {api.key}"}
    wrong_type = await http.post("/campaigns/1/recipients", content=b"phone\n", headers=auth)
    assert the_error(wrong_type, 415)["extensions"] == {"code": "UNSUPPORTED_MEDIA_TYPE", "field": ["content-type"]}
    missing = await http.get("/campaigns/Q2FtcGFpZ246OTk5OTk5OQ==/report.csv", headers=auth)
    assert the_error(missing, 404)["extensions"]["code"] == "NOT_FOUND"

    unsigned = await http.post("/webhooks/whatsapp", content=b"{}")
    assert the_error(unsigned, 401)["extensions"] == {"code": "UNAUTHENTICATED"}
    handshake = await http.get("/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "no"})
    assert the_error(handshake, 403)["extensions"] == {"code": "FORBIDDEN", "field": ["hub.verify_token"]}
