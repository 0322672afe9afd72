"""GraphiQL served by the service itself (web/graphiql): the page and its policy, its
files (each vendored one byte for byte what the manifest says), nothing named on
another origin; then in Debian's Chromium (Playwright), cut off from everything but
the service: the key, a query, and a subscription's updates as the API moves the
campaign. Every request the browser made is recorded and checked."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import build_schema, parse, validate
from strawberry.printer import print_schema

from schema.app import schema
from tests.conftest import Api
from web import graphiql

CHROMIUM = Path("/usr/bin/chromium")
MANIFEST: dict[str, Any] = json.loads(graphiql.MANIFEST.read_text())["files"]
VENDOR = f"{graphiql.STATIC_PATH}/vendor/"
NPM = graphiql.DIR / "npm"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
PAGE = {"Accept": "text/html"}


class _Refs(HTMLParser):
    """What a page makes the browser load: script sources and stylesheet links."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.nonces: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.loads.append(str(a["src"]))
            if a.get("nonce"):
                self.nonces.append(str(a["nonce"]))
        elif tag == "link" and a.get("rel") == "stylesheet":
            self.loads.append(str(a["href"]))


def _refs(html: str) -> _Refs:
    refs = _Refs()
    refs.feed(html)
    return refs


def _policy(header: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in header.split(";") if d.strip()}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_the_page_is_served_to_a_browser_with_a_strict_policy_and_a_fresh_nonce(
    http: httpx.AsyncClient, server: str
) -> None:
    first, second = await http.get("/graphql", headers=PAGE), await http.get("/graphql", headers=PAGE)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "text/html; charset=utf-8"
    assert first.headers["cache-control"] == "no-store"  # the nonce is this answer's own
    assert first.headers["x-content-type-options"] == "nosniff"
    policy = _policy(first.headers["content-security-policy"])
    [nonce] = _refs(first.text).nonces
    assert policy["script-src"] == ["'self'"]  # no inline script at all
    assert policy["style-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert policy["default-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["font-src"] == ["'self'", "data:"]
    host = server.removeprefix("http://")
    assert policy["connect-src"] == ["'self'", f"ws://{host}", f"wss://{host}"]
    assert "'unsafe-inline'" not in first.headers["content-security-policy"]
    assert len(nonce) >= 22 and _refs(second.text).nonces != [nonce]
    assert "<script>" not in first.text and "<style" not in first.text


async def test_every_file_the_page_loads_is_served_and_the_vendored_ones_are_the_manifests(
    http: httpx.AsyncClient,
) -> None:
    loads = _refs((await http.get("/graphql", headers=PAGE)).text).loads
    assert loads and all(src.startswith(f"{graphiql.STATIC_PATH}/") for src in loads), loads
    vendored = {src.removeprefix(VENDOR) for src in loads if src.startswith(VENDOR)}
    assert vendored == set(MANIFEST)  # every built file is used, and only built files are vendored
    for src in loads:
        response = await http.get(src)
        assert response.status_code == 200, src
        assert response.headers["content-type"] == TYPES[Path(src).suffix], src
        assert response.headers["x-content-type-options"] == "nosniff"
        name = src.removeprefix(VENDOR)
        if name in MANIFEST:
            assert len(response.content) == MANIFEST[name]["bytes"], src
            assert _sha256(response.content) == MANIFEST[name]["sha256"], f"{src} is not the file that was built"


def test_the_vendored_files_are_the_ones_the_lock_pins() -> None:
    for name, entry in MANIFEST.items():
        assert _sha256((graphiql.DIR / "vendor" / name).read_bytes()) == entry["sha256"], name
    pinned = json.loads((NPM / "package.json").read_text())["dependencies"]
    locked = json.loads((NPM / "package-lock.json").read_text())["packages"]
    assert locked[""]["dependencies"] == pinned  # the lock was made from this package.json
    for entry in MANIFEST.values():
        assert pinned[entry["package"]] == entry["version"] == locked[f"node_modules/{entry['package']}"]["version"]


async def test_neither_the_page_nor_its_own_files_name_another_origin(http: httpx.AsyncClient) -> None:
    url = re.compile(r"\b(?:https?|wss?):/{2}", re.IGNORECASE)
    page = (await http.get("/graphql", headers=PAGE)).text
    for name, text in [("page", page), *[(f, (graphiql.DIR / f).read_text()) for f in ("page.js", "page.css")]]:
        assert not url.search(text), f"{name} names a URL: {url.search(text)}"
    # graphiql's stylesheet embeds its fonts and images: every url() is a data: URI
    css = (await http.get(f"{VENDOR}graphiql.min.css")).text
    urls = re.findall(r"url\(\s*['\"]?([^'\")]*)", css)
    assert urls and all(u.startswith("data:") for u in urls), [u[:40] for u in urls if not u.startswith("data:")]


def test_the_prefilled_query_and_its_commented_examples_are_valid_against_the_served_schema() -> None:
    text = (graphiql.DIR / "page.js").read_text()
    editor = text.split("const FIRST_QUERY = `", 1)[1].split("`;", 1)[0]
    # the examples are commented out: each block of "# "-lines from an operation keyword
    examples = re.findall(r"^# (?:subscription|query|mutation) .*?^# }$", editor, re.MULTILINE | re.DOTALL)
    documents = [editor, *(re.sub(r"^# ?", "", e, flags=re.MULTILINE) for e in examples)]
    assert len(documents) == 3, examples
    served = build_schema(print_schema(schema))
    for document in documents:
        assert validate(served, parse(document.replace("<a campaign id>", "x"))) == [], document


@pytest.mark.parametrize(
    "path", ["__init__.py", "index.html", "npm/package.json", "vendor/manifest.json", "vendor/LICENSE.react.txt"]
)
async def test_only_the_pages_scripts_and_styles_are_served(http: httpx.AsyncClient, path: str) -> None:
    assert (await http.get(f"{graphiql.STATIC_PATH}/{path}")).status_code == 404


async def test_a_get_query_asking_for_json_is_still_answered_by_the_api(api: Api) -> None:
    response = await api.http.get(
        "/graphql", params={"query": "{ viewer { name } }"}, headers={**api.headers, "Accept": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"data": {"viewer": {"name": "Test workspace"}}}


# --- in a browser that can reach nothing but the service -----------------------------

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PROGRESS = 'subscription Progress {{ campaignProgress(id: "{id}") {{ status stats {{ total cancelled }} }} }}'
#: what the page reports when CSP blocks something (the browser's own console error)
BLOCKED = "Content Security Policy"


def _cut_off(origin: str) -> list[str]:
    """Chromium's arguments for a network of one origin: everything else goes to a
    proxy where nothing listens (loopback included: `<-loopback>` ends its bypass)."""
    return [*CHROMIUM_ARGS, "--proxy-server=127.0.0.1:9", f"--proxy-bypass-list=<-loopback>;{origin}"]


def _response(page: Any) -> Any:
    return page.locator(".graphiql-response")


async def _run(page: Any, operation: str, document: str | None = None) -> None:
    """Replace the query editor's text (typed as one paste) and press GraphiQL's run
    button once it has read the new operation (its tab takes the operation's name)."""
    from playwright.async_api import expect

    if document is not None:
        await page.locator(".graphiql-query-editor .CodeMirror").click()
        await page.keyboard.press("Control+A")
        await page.keyboard.insert_text(document)
    await expect(page.locator(".graphiql-tab-active")).to_have_text(operation)
    await page.locator(".graphiql-execute-button").click()


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium (`apt-get install -y chromium`; .ci/run does)",
)
async def test_offline_graphiql_takes_the_key_runs_a_query_and_shows_a_subscriptions_updates(
    server: str, api: Api
) -> None:
    from playwright.async_api import Request, Route, WebSocket, async_playwright, expect

    campaign = await api.ready_campaign(2, name="Seen in GraphiQL")
    origin = server.removeprefix("http://")
    requests: list[str] = []
    refused: list[str] = []
    sockets: list[str] = []
    sent: list[dict[str, Any]] = []
    problems: list[str] = []

    async def only_the_service(route: Route, request: Request) -> None:
        if request.url.startswith(f"{server}/"):
            await route.continue_()
        else:
            refused.append(request.url)
            await route.abort()

    def socket(ws: WebSocket) -> None:
        sockets.append(ws.url)
        ws.on("framesent", lambda payload: sent.append(json.loads(payload)))

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=_cut_off(origin))
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.route("**/*", only_the_service)
            page.on("request", lambda r: requests.append(r.url))
            page.on("websocket", socket)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("console", lambda m: problems.append(m.text) if BLOCKED in m.text else None)

            await page.goto(f"{server}/graphql")
            key_state = page.get_by_test_id("key-state")
            await expect(key_state).to_have_attribute("data-state", "none")
            # the first query is there, ready to run
            await expect(page.locator(".graphiql-query-editor")).to_contain_text("query FirstLook")

            await page.get_by_test_id("key-input").fill(api.key)
            await page.get_by_test_id("key-save").click()
            await expect(key_state).to_have_text("Workspace: Test workspace")
            assert await page.evaluate("localStorage.getItem('campaigns.apiKey')") == api.key

            await _run(page, "FirstLook")
            await expect(_response(page)).to_contain_text('"name": "Test workspace"')
            await expect(_response(page)).to_contain_text('"name": "Seen in GraphiQL"')

            await _run(page, "Progress", PROGRESS.format(id=campaign["id"]))
            await expect(_response(page)).to_contain_text('"status": "DRAFT"')
            await expect(_response(page)).to_contain_text('"total": 2')
            await api.gql("mutation($id: ID!) { sendCampaignNow(id: $id) { userErrors { code } } }", id=campaign["id"])
            await expect(_response(page)).to_contain_text('"status": "QUEUED"')
            await api.gql("mutation($id: ID!) { cancelCampaign(id: $id) { userErrors { code } } }", id=campaign["id"])
            await expect(_response(page)).to_contain_text('"status": "CANCELLED"')
            await expect(_response(page)).to_contain_text('"cancelled": 2')

            # What inserts styles at run time, under the policy: a dialog (a <style> with
            # the nonce) and CodeMirror's jump-to-line bar (two hashed style attributes).
            await page.get_by_label("Open settings dialog").click()
            await expect(page.get_by_role("dialog")).to_be_visible()
            await page.keyboard.press("Escape")
            await page.locator(".graphiql-query-editor .CodeMirror").click()
            await page.keyboard.press("Alt+G")
            await expect(page.locator(".CodeMirror-dialog")).to_be_visible()
            await page.keyboard.press("Escape")

            await page.get_by_test_id("key-forget").click()
            await expect(key_state).to_have_attribute("data-state", "none")
            assert await page.evaluate("localStorage.getItem('campaigns.apiKey')") is None
        finally:
            await browser.close()

    assert problems == []
    assert refused == [], refused
    assert requests and all(url.startswith(f"{server}/") for url in requests), requests
    assert set(sockets) == {f"ws://{origin}/graphql"}
    # graphql-transport-ws, the key in connection_init
    assert sent[0] == {"type": "connection_init", "payload": {"apiKey": api.key}}, sent
    assert any(m["type"] == "subscribe" for m in sent), sent
