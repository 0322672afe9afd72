"""The dashboard at `/` in a real browser (Debian's Chromium driven by Playwright),
against `campaigns dev` in a subprocess: SQLite, embedded Redis, the WhatsApp
simulator, API and worker, so the campaign really sends and receipts come back.

It creates a campaign with 1,500 recipients through the page, sends it, watches the
counters move, pauses, resumes, and waits until the page shows exactly what GraphQL
returns. The screenshot taken mid-send is docs/dashboard.png (shown in the README).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed at /usr/bin/chromium (`apt-get install -y chromium`; .ci/run does)",
        allow_module_level=True,
    )

from playwright.async_api import Locator, Page, async_playwright, expect  # noqa: E402

from tests.processes import free_port, stop, wait_http  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# The README's screenshot is refreshed only on request (UPDATE_SCREENSHOT=1), so a test
# run leaves the tree clean; otherwise it is still taken, into a temporary file.
SCREENSHOT = (
    ROOT / "docs" / "dashboard.png"
    if os.environ.get("UPDATE_SCREENSHOT")
    else Path(tempfile.gettempdir()) / "campaigns-dashboard.png"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RECIPIENTS = 1500
STATS = ("total", "pending", "sent", "delivered", "read", "replied", "failed", "cancelled")
CAMPAIGN = (
    f"query($id: ID!) {{ campaign(id: $id) {{ status allowedActions stats {{ {' '.join(STATS)} }} "
    "report { billable { category count } } } }"
)


@pytest.fixture(scope="module")
def dev_server() -> Iterator[tuple[str, str]]:
    """`campaigns dev` on a free port in a temporary directory; (base URL, dev API key)."""
    tmp = Path(tempfile.mkdtemp(prefix="campaigns-dashboard-"))
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "DATABASE_URL") and not k.startswith(("WHATSAPP_", "SIMULATOR_"))
    }
    env |= {
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "WHATSAPP_RATE_LIMIT": "300",  # 1,500 recipients take about 5 s
        "LOG_LEVEL": "WARNING",
        "SIMULATOR_SEED": "7",
        "SIMULATOR_ERROR_MIX": "131026=0.01",  # a few failures, well under the auto-pause guard
        # 1,500 recipients on the development sender (the simulator's number): no daily limit
        "SIMULATOR_MESSAGING_LIMIT_TIER": "TIER_UNLIMITED",
    }
    stdout, stderr = tmp / "stdout.log", tmp / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "dev", "--port", str(port), "--latency-ms", "40"],
            cwd=tmp,
            env=env,
            stdout=out,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        key = _wait_for_key(proc, stdout, stderr)
        wait_http(f"{base}/healthz", proc, stderr.read_text)
        yield base, key
    finally:
        stop(proc, signal.SIGINT, 20)  # like Ctrl-C: it stops its embedded Redis too


def _wait_for_key(proc: subprocess.Popen[bytes], stdout: Path, stderr: Path, timeout: float = 60) -> str:
    """The dev key: the last line of what `campaigns dev` prints."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = stdout.read_text().strip().splitlines()
        if lines and "API key" in "".join(lines[-2:-1]) and lines[-1].strip().startswith("cmp_"):
            return lines[-1].strip()
        if proc.poll() is not None:
            raise RuntimeError(f"campaigns dev exited {proc.returncode}: {stderr.read_text()[-3000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"campaigns dev printed no key: {stdout.read_text()[-2000:]}")


class Gql:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        body = (await self.http.post("/graphql", json={"query": query, "variables": variables})).json()
        assert "errors" not in body, body
        return body["data"]

    async def campaign(self, gid: str) -> dict[str, Any]:
        return (await self(CAMPAIGN, id=gid))["campaign"]

    async def draft(self, name: str, recipients: int, first: int) -> str:
        data = await self(
            "mutation($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { id } userErrors { message } } }",
            # the dev sender sends templates only (the 24-hour window): Meta's hello_world takes no parameter
            input={"name": name, "body": "Hello", "templateName": "hello_world", "templateLanguage": "en_US"},
        )
        gid = data["createCampaign"]["campaign"]["id"]
        rows = "".join(f"+1415{first + i:07d},Friend {i}\n" for i in range(recipients))
        response = await self.http.post(
            f"/campaigns/{gid}/recipients", content=f"phone,name\n{rows}", headers={"Content-Type": "text/csv"}
        )
        assert response.json()["added"] == recipients, response.text
        return str(gid)

    async def act(self, mutation: str, **variables: Any) -> dict[str, Any]:
        declared = ", ".join(f"${k}: {'ID!' if k == 'id' else 'DateTime!'}" for k in variables)
        args = ", ".join(f"{k}: ${k}" for k in variables)
        data = await self(
            f"mutation({declared}) {{ r: {mutation}({args}) {{ campaign {{ status }} userErrors {{ message }} }} }}",
            **variables,
        )
        assert data["r"]["userErrors"] == [], data
        return data["r"]["campaign"]


async def ui_stats(page: Page) -> dict[str, int]:
    return await page.evaluate(
        """(keys) => Object.fromEntries(keys.map((k) =>
             [k, Number(document.querySelector(`[data-testid=stat-${k}]`).dataset.value)]))""",
        list(STATS),
    )


async def ui_billable(page: Page) -> dict[str, int]:
    """What the campaign page shows it costs: billable messages per pricing category."""
    shown = (
        await page.get_by_test_id("billable")
        .locator("[data-value]")
        .evaluate_all(
            "(items) => items.map((i) => [i.dataset.testid.replace('billable-', ''), Number(i.dataset.value)])"
        )
    )
    return {str(category): int(count) for category, count in shown}


async def ui_actions(page: Page) -> list[str]:
    buttons = page.get_by_test_id("actions").locator("button")
    return [str(a) for a in await buttons.evaluate_all("(bs) => bs.map((b) => b.dataset.action)")]


def stat(page: Page, key: str) -> Locator:
    return page.get_by_test_id(f"stat-{key}")


async def test_dashboard_creates_sends_pauses_and_resumes_a_campaign_live(dev_server: tuple[str, str]) -> None:
    base, key = dev_server
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        gql = Gql(http)
        # Neighbours in the list: a draft that is sent while the page watches, a scheduled one.
        welcome = await gql.draft("Welcome series", 40, first=4_000_000)
        promo = await gql.draft("Winter promo", 25, first=5_000_000)
        await gql.act("scheduleCampaign", id=promo, scheduledAt=(datetime.now(UTC) + timedelta(days=7)).isoformat())

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 940})
                problems: list[str] = []
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)

                # The key comes from ?key=, is kept in localStorage and leaves the address bar.
                await page.goto(f"{base}/?key={key}")
                await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "live")
                assert "key=" not in page.url
                assert await page.evaluate("localStorage.getItem('campaigns.apiKey')") == key
                await expect(page.get_by_test_id("workspace")).to_have_text("Development")

                # The list moves with campaignStatusChanges: no reload.
                rows = page.get_by_test_id("campaign-row")
                await expect(rows).to_have_count(2)
                welcome_row = page.locator(f'[data-testid=campaign-row][data-id="{welcome}"]')
                await expect(welcome_row.get_by_test_id("row-status")).to_have_text("DRAFT")
                await expect(page.locator(f'[data-id="{promo}"] [data-testid=row-status]')).to_have_text("SCHEDULED")
                await gql.act("sendCampaignNow", id=welcome)
                await expect(welcome_row.get_by_test_id("row-status")).to_have_text("COMPLETED", timeout=20_000)

                # New campaign: name, body with a placeholder, recipients pasted as CSV.
                await page.get_by_test_id("new-campaign").click()
                await page.get_by_test_id("new-name").fill("Black Friday")
                await page.get_by_test_id("new-template").select_option(
                    label="spring_sale (en_US, marketing, 2 parameters)"
                )
                await page.get_by_test_id("new-body").fill("{{name}} {{discount}}")
                csv = "phone,name,discount\n" + "\n".join(
                    f"+1415{3_000_000 + i:07d},Customer {i},30%" for i in range(RECIPIENTS)
                )
                await page.get_by_test_id("new-csv").fill(csv)
                await expect(page.get_by_test_id("placeholder-hint")).to_have_text(
                    "Placeholders: {{name}}, {{discount}}"
                )
                await page.get_by_test_id("create-submit").click()

                report = page.get_by_test_id("import-report")
                await expect(report.get_by_test_id("report-added")).to_have_attribute("data-value", str(RECIPIENTS))
                for item in ("duplicates", "optedOut", "invalid"):
                    await expect(report.get_by_test_id(f"report-{item}")).to_have_attribute("data-value", "0")
                view = page.get_by_test_id("campaign-view")
                gid = await view.get_attribute("data-id")
                assert gid
                status = page.get_by_test_id("campaign-status")
                await expect(status).to_have_attribute("data-status", "DRAFT")
                await expect(stat(page, "total")).to_have_attribute("data-value", str(RECIPIENTS))
                await expect(rows).to_have_count(3)
                assert await ui_actions(page) == (await gql.campaign(gid))["allowedActions"]

                # Send: the counters move while it is PROCESSING.
                await page.get_by_test_id("action-SEND_NOW").click()
                await expect(status).to_have_attribute("data-status", "PROCESSING", timeout=10_000)
                first = (await ui_stats(page))["sent"]
                await page.wait_for_function(
                    "(n) => Number(document.querySelector('[data-testid=stat-sent]').dataset.value) > n", arg=first
                )
                second = (await ui_stats(page))["sent"]
                assert second > first

                # Half-way: the screenshot for the README, then pause.
                await page.wait_for_function(
                    "(n) => Number(document.querySelector('[data-testid=stat-pending]').dataset.value) <= n",
                    arg=RECIPIENTS // 2,
                )
                await expect(status).to_have_attribute("data-status", "PROCESSING")
                SCREENSHOT.parent.mkdir(exist_ok=True)
                await page.screenshot(path=str(SCREENSHOT))
                assert SCREENSHOT.stat().st_size < 300_000, SCREENSHOT.stat().st_size

                await page.get_by_test_id("action-PAUSE").click()
                await expect(status).to_have_attribute("data-status", "PAUSED")
                assert sorted(await ui_actions(page)) == ["CANCEL", "DUPLICATE", "RESUME"]
                paused = await gql.campaign(gid)
                assert paused["status"] == "PAUSED"
                assert paused["stats"]["pending"] > 0, "paused too late: the campaign had finished"
                await expect(page.locator('[data-testid=history-row][data-to="PAUSED"]')).to_have_count(1)

                # Resume, and the page follows it to COMPLETED.
                await page.get_by_test_id("action-RESUME").click()
                await expect(status).to_have_attribute("data-status", re.compile("QUEUED|PROCESSING|COMPLETED"))
                await expect(status).to_have_attribute(
                    "data-status", "COMPLETED", timeout=60_000
                )  # generous: a loaded CI machine
                await expect(stat(page, "pending")).to_have_attribute("data-value", "0")
                await expect(page.locator('[data-testid=history-row][data-to="COMPLETED"]')).to_have_count(1)
                await expect(page.locator(f'[data-id="{gid}"] [data-testid=row-status]')).to_have_text("COMPLETED")

                # Receipts keep arriving after COMPLETED; the page ends on exactly the
                # numbers GraphQL returns.
                deadline = time.monotonic() + 20
                while True:
                    shown, truth = await ui_stats(page), await gql.campaign(gid)
                    billed = {b["category"]: b["count"] for b in truth["report"]["billable"]}
                    if (shown == truth["stats"] and await ui_billable(page) == billed) or time.monotonic() > deadline:
                        break
                    await page.wait_for_timeout(250)
                assert shown == truth["stats"]
                # what it costs, as GraphQL says: the simulator bills what it accepted as
                # marketing, once each, when its `sent` status comes (some come late)
                assert await ui_billable(page) == billed and set(billed) == {"marketing"}
                assert 0 < billed["marketing"] <= shown["sent"] + shown["failed"]
                assert shown["total"] == RECIPIENTS
                assert shown["pending"] == 0
                assert shown["sent"] + shown["failed"] == RECIPIENTS
                assert await ui_actions(page) == truth["allowedActions"]
                assert problems == []
            finally:
                await browser.close()
    assert time.monotonic() - started < 60


async def test_dashboard_creates_a_campaign_from_a_template_with_a_preview_and_sends_it(
    dev_server: tuple[str, str],
) -> None:
    base, key = dev_server
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        gql = Gql(http)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 940})
                problems: list[str] = []
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                await page.goto(f"{base}/?key={key}")
                await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "live")
                await page.get_by_test_id("new-campaign").click()
                await page.get_by_test_id("new-name").fill("Spring, templated")
                # the dev sender's templates (synced from the simulator when dev started)
                picker = page.get_by_test_id("new-template")
                await expect(picker.locator("option")).to_have_count(5)  # none + 4 samples
                await picker.select_option(label="spring_sale (en_US, marketing, 2 parameters)")
                await expect(page.get_by_test_id("new-body")).to_have_value("{{param1}} {{param2}}")
                await page.get_by_test_id("new-body").fill("{{name}} {{discount}}")
                rows = [f"+1415{6_000_000 + i:07d},Customer {i},{10 + i}%" for i in range(3)]
                await page.get_by_test_id("new-csv").fill("phone,name,discount\n" + "\n".join(rows))
                await expect(page.get_by_test_id("template-preview")).to_have_text(
                    "Preview: Hi Customer 0, our spring sale is on: 10% off everything until Sunday."
                )
                await page.get_by_test_id("create-submit").click()
                view = page.get_by_test_id("campaign-view")
                await expect(view).to_be_visible()
                gid = await view.get_attribute("data-id")
                assert gid
                await page.get_by_test_id("action-SEND_NOW").click()
                await expect(page.get_by_test_id("campaign-status")).to_have_attribute(
                    "data-status", "COMPLETED", timeout=30_000
                )
                sent = await gql(
                    "query($id: ID!) { campaign(id: $id) { templateName templateLanguage stats { sent } } }", id=gid
                )
                assert sent["campaign"] == {
                    "templateName": "spring_sale",
                    "templateLanguage": "en_US",
                    "stats": {"sent": 3},
                }
                assert problems == []
            finally:
                await browser.close()
        ledger = await http.get("/simulator/_simulator/ledger/messages", params={"limit": 100000})
        bodies = {m["template"]["body"] for m in ledger.json()["messages"] if m.get("template")}
        assert "Hi Customer 2, our spring sale is on: 12% off everything until Sunday." in bodies


async def test_dashboard_page_and_its_files_are_public_and_nothing_else_is_served(http: httpx.AsyncClient) -> None:
    page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/dashboard/app.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    for name, kind in [
        ("app.js", "javascript"),
        ("ws.js", "javascript"),
        ("chart.js", "javascript"),
        ("style.css", "css"),
    ]:
        response = await http.get(f"/static/dashboard/{name}")
        assert response.status_code == 200, name
        assert kind in response.headers["content-type"]
        assert response.headers["cache-control"] == "no-cache"
    assert (await http.get("/static/dashboard/__init__.py")).status_code == 404
    assert (await http.get("/static/dashboard/missing.js")).status_code == 404
