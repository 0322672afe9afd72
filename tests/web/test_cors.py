"""CORS for single-page apps on their own origin (ALLOWED_ORIGINS), against a real
`campaigns serve`: a preflight needs no key; a configured origin gets the headers on
every answer, refusals included, the CSV routes too; any other origin gets none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from settings import Settings
from tests.conftest import Api
from tests.processes import api_process

SPA = "https://spa.example.com"
OTHER = "https://evil.example.net"


@pytest.fixture
def cors_api(settings: Settings, server: str, tmp_path: Path) -> Iterator[str]:
    with api_process(settings, tmp_path, ALLOWED_ORIGINS=f"{SPA},https://admin.example.com") as url:
        yield url


def _preflight(origin: str, path: str = "/graphql") -> tuple[str, dict[str, str]]:
    return path, {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }


async def test_a_preflight_from_a_configured_origin_is_answered_without_a_key(cors_api: str) -> None:
    async with httpx.AsyncClient(base_url=cors_api) as http:
        for path in ("/graphql", "/campaigns/Q2FtcGFpZ246MQ/recipients"):
            url, headers = _preflight(SPA, path)
            response = await http.options(url, headers=headers)
            assert response.status_code == 200, (path, response.text)
            assert response.headers["access-control-allow-origin"] == SPA
            allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
            assert {"authorization", "content-type"} <= allowed
            assert "POST" in response.headers["access-control-allow-methods"]
            assert int(response.headers["access-control-max-age"]) > 0


async def test_answers_to_a_configured_origin_carry_the_headers_refusals_included(api: Api, cors_api: str) -> None:
    async with httpx.AsyncClient(base_url=cors_api) as http:
        ok = await http.post("/graphql", json={"query": "{ viewer { id } }"}, headers=api.headers | {"Origin": SPA})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == SPA
        assert "x-request-id" in ok.headers["access-control-expose-headers"].lower()
        refused = await http.post("/graphql", json={"query": "{ viewer { id } }"}, headers={"Origin": SPA})
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == SPA
        campaign = await api.ready_campaign(1)
        report = await http.get(f"/campaigns/{campaign['id']}/report.csv", headers=api.headers | {"Origin": SPA})
        assert report.status_code == 200 and report.headers["access-control-allow-origin"] == SPA


async def test_another_origin_gets_no_cors_headers(api: Api, cors_api: str) -> None:
    async with httpx.AsyncClient(base_url=cors_api) as http:
        url, headers = _preflight(OTHER)
        preflight = await http.options(url, headers=headers)
        assert preflight.status_code == 400 and "access-control-allow-origin" not in preflight.headers
        answer = await http.post(
            "/graphql", json={"query": "{ viewer { id } }"}, headers=api.headers | {"Origin": OTHER}
        )
        assert "access-control-allow-origin" not in answer.headers


async def test_without_allowed_origins_no_origin_gets_cors_headers(api: Api) -> None:
    url, headers = _preflight(SPA)
    preflight = await api.http.options(url, headers=headers)
    assert "access-control-allow-origin" not in preflight.headers
