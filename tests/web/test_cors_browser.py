"""A single-page app on its own origin, in a real browser (Debian's Chromium driven by
Playwright): from a configured origin it queries, mutates, uploads a CSV and receives
a subscription update with its key; the same page from an origin not configured is
refused by the browser (no CORS headers) and by the WebSocket origin check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from settings import Settings
from tests.conftest import Api, phone, serve
from tests.processes import api_process

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed at /usr/bin/chromium (`apt-get install -y chromium`; .ci/run does)",
        allow_module_level=True,
    )

from playwright.async_api import async_playwright  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

#: what the page does with the API: every answer, or "blocked" where the browser refused
SPA = """async ({api, key, csv}) => {
  const blocked = (e) => "blocked: " + e;
  const post = (body) => fetch(api + "/graphql", {method: "POST", body: JSON.stringify(body),
      headers: {"Authorization": "Bearer " + key, "Content-Type": "application/json"}}).then(r => r.json());
  let viewer, created, upload, update;
  try { viewer = await post({query: "{ viewer { name } }"}); } catch (e) { viewer = blocked(e); }
  try {
    created = await post({query: "mutation { createCampaign(input: {name: \\"SPA\\", body: \\"Hi {{name}}\\"})"
      + " { campaign { id } userErrors { message } } }"});
  } catch (e) { created = blocked(e); }
  const id = created && created.data ? created.data.createCampaign.campaign.id : null;
  try {
    upload = await fetch(api + "/campaigns/" + (id || "x") + "/recipients", {method: "POST", body: csv,
      headers: {"Authorization": "Bearer " + key, "Content-Type": "text/csv"}}).then(r => r.json());
  } catch (e) { upload = blocked(e); }
  update = await new Promise((resolve) => {
    const ws = new WebSocket(api.replace("http", "ws") + "/graphql", "graphql-transport-ws");
    const done = (v) => { resolve(v); try { ws.close(); } catch (e) {} };
    setTimeout(() => done("blocked: timeout"), 10000);
    ws.onopen = () => ws.send(JSON.stringify({type: "connection_init", payload: {apiKey: key}}));
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "connection_ack") {
        ws.send(JSON.stringify({id: "1", type: "subscribe", payload: {
          query: "subscription($id: ID!) { campaignProgress(id: $id) { status stats { total } } }",
          variables: {id: id || "x"}}}));
      } else if (message.type === "next") { done(message.payload); }
    };
    ws.onclose = (event) => done("blocked: closed " + event.code);
  });
  return {viewer, created, upload, update};
}"""


async def _page(_request: Any) -> HTMLResponse:
    return HTMLResponse("<!doctype html><title>an SPA</title><p>SPA</p>")


@pytest_asyncio.fixture
async def origins() -> AsyncIterator[tuple[str, str]]:
    """The SPA's page served from two origins: one the API allows, one it does not."""
    page = Starlette(routes=[Route("/", _page)])
    async with serve(page) as allowed, serve(page) as other:
        yield allowed, other


async def _run(page_url: str, api_url: str, key: str) -> dict[str, Any]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = await browser.new_page()
            await page.goto(page_url)
            csv = f"phone,name\n{phone(70)},Ann\n{phone(71)},Bo\n"
            result: dict[str, Any] = await page.evaluate(SPA, {"api": api_url, "key": key, "csv": csv})
            return result
        finally:
            await browser.close()


async def test_an_spa_on_a_configured_origin_uses_the_api_and_one_elsewhere_is_refused(
    api: Api, settings: Settings, server: str, tmp_path: Path, origins: tuple[str, str]
) -> None:
    allowed, other = origins
    with api_process(settings, tmp_path, ALLOWED_ORIGINS=allowed) as api_url:
        seen = await _run(allowed + "/", api_url, api.key)
        assert seen["viewer"] == {"data": {"viewer": {"name": "Test workspace"}}}, seen
        assert seen["created"]["data"]["createCampaign"]["userErrors"] == [], seen
        assert seen["upload"]["added"] == 2, seen
        assert seen["update"]["data"]["campaignProgress"] == {"status": "DRAFT", "stats": {"total": 2}}, seen
        refused = await _run(other + "/", api_url, api.key)
        for part in ("viewer", "created", "upload", "update"):
            assert str(refused[part]).startswith("blocked"), (part, refused)
