"""`GET /campaigns/{id}/report.csv`: one CSV row per message, streamed."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import httpx

from domain.ids import expect_id, to_global_id
from domain.lifecycle import CampaignStatus
from models import Message
from services.csv_io import EXPORT_COLUMNS
from tests.conftest import Api, phone
from tests.schema.states import campaign_in, settle_outcomes


async def export(api: Api, gid: str) -> httpx.Response:
    return await api.http.get(f"/campaigns/{gid}/report.csv", headers=api.headers)


def rows_of(response: httpx.Response) -> tuple[list[str], list[dict[str, str]]]:
    assert response.status_code == 200, response.text
    text = response.content.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = next(reader)
    return header, [dict(zip(header, row, strict=True)) for row in reader]


async def test_export_has_the_columns_and_one_row_per_message_with_its_status(api: Api) -> None:
    campaign = await campaign_in(api, CampaignStatus.PROCESSING, recipients=5)
    gid = campaign["id"]
    pk = expect_id(gid, "Campaign")
    await settle_outcomes(pk, sent=2, failed=1, code="131026")

    response = await export(api, gid)
    assert response.headers["content-type"].startswith("text/csv")
    assert "charset=utf-8" in response.headers["content-type"]
    assert f'filename="campaign-{pk}-report.csv"' in response.headers["content-disposition"]
    assert response.headers.get("x-request-id")
    assert response.content.startswith(b"\xef\xbb\xbf")  # a BOM, for spreadsheets
    header, rows = rows_of(response)
    assert tuple(header) == EXPORT_COLUMNS
    assert [r["phone"] for r in rows] == [phone(i) for i in range(5)]  # message id order
    assert [r["status"] for r in rows] == ["SENT", "SENT", "FAILED", "PENDING", "PENDING"]

    sent, failed, pending = rows[0], rows[2], rows[3]
    assert sent["error_code"] == "" and sent["error_message"] == ""
    assert sent["attempts"] == "1"
    assert datetime.fromisoformat(sent["sent_at"]).tzinfo is not None
    assert sent["failed_at"] == "" and sent["delivered_at"] == "" and sent["read_at"] == ""
    assert failed["error_code"] == "131026"
    assert failed["error_message"] == "Something went wrong"
    assert failed["failed_at"] and failed["sent_at"] == ""
    assert pending["attempts"] == "0"
    assert all(pending[c] == "" for c in ("error_code", "provider_message_id", "sent_at", "failed_at"))
    assert json.loads(sent["variables"]) == {"name": "User 0"}

    # the file agrees with the message rows in the database
    db = {m.phone: m for m in await Message.filter(campaign_id=pk)}
    for row in rows:
        message = db[row["phone"]]
        assert row["status"] == message.status.value
        assert row["error_code"] == (message.error_code or "")
        assert row["attempts"] == str(message.attempts)


async def test_report_csv_url_points_at_the_export(api: Api) -> None:
    campaign = await campaign_in(api, CampaignStatus.COMPLETED, recipients=3)
    gid = campaign["id"]
    data = await api.gql(
        "query($id: ID!) { campaign(id: $id) { report { csvUrl partial stats { total sent failed } } } }",
        id=gid,
    )
    report = data["campaign"]["report"]
    assert report["csvUrl"] == f"/campaigns/{gid}/report.csv"
    assert report["partial"] is False
    _, rows = rows_of(await api.http.get(report["csvUrl"], headers=api.headers))
    assert len(rows) == report["stats"]["total"] == 3
    assert sum(r["status"] == "SENT" for r in rows) == report["stats"]["sent"] == 2
    assert sum(r["status"] == "FAILED" for r in rows) == report["stats"]["failed"] == 1
    assert [r["error_code"] for r in rows if r["status"] == "FAILED"] == ["131000"]


async def test_variables_with_commas_quotes_and_newlines_round_trip(api: Api) -> None:
    campaign = await api.create_campaign()
    tricky = {"name": 'Ann "A", Smith', "note": "line one\nline two", "emoji": "✓ ünï"}
    await api.add(campaign["id"], (phone(1), tricky))
    _, rows = rows_of(await export(api, campaign["id"]))
    assert len(rows) == 1
    assert json.loads(rows[0]["variables"]) == tricky


async def test_a_draft_without_recipients_exports_the_header_only(api: Api) -> None:
    campaign = await api.create_campaign()
    header, rows = rows_of(await export(api, campaign["id"]))
    assert tuple(header) == EXPORT_COLUMNS
    assert rows == []


async def test_6000_recipients_export_completely_across_pages(api: Api) -> None:
    campaign = await api.create_campaign()
    gid = campaign["id"]
    n = 6_000
    body = "phone,name\n" + "".join(f"{phone(i)},User {i}\n" for i in range(n))
    response = await api.http.post(
        f"/campaigns/{gid}/recipients",
        content=body.encode(),
        headers={**api.headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["added"] == n
    # statuses change across the seam between the export's pages (rows 5,000 and 5,001)
    await settle_outcomes(expect_id(gid, "Campaign"), sent=4_999, failed=11)

    async with api.http.stream("GET", f"/campaigns/{gid}/report.csv", headers=api.headers) as streamed:
        assert streamed.status_code == 200
        assert streamed.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in streamed.headers
        chunks = [chunk async for chunk in streamed.aiter_raw()]
    assert len(chunks) >= 2  # streamed, not built whole
    header, rows = rows_of(httpx.Response(200, content=b"".join(chunks)))
    assert tuple(header) == EXPORT_COLUMNS
    assert len(rows) == n
    assert [r["phone"] for r in rows] == [phone(i) for i in range(n)]  # no gap, no repeat at the page seam
    assert [r["status"] for r in rows[4_998:5_012]] == ["SENT"] + ["FAILED"] * 11 + ["PENDING"] * 2
    assert json.loads(rows[-1]["variables"]) == {"name": f"User {n - 1}"}


async def test_another_workspaces_campaign_is_404(api: Api, other_api: Api) -> None:
    theirs = await other_api.ready_campaign(2)
    response = await export(api, theirs["id"])
    assert response.status_code == 404
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert phone(0) not in response.text


async def test_malformed_or_unknown_id_is_404(api: Api) -> None:
    for gid in ("nope", to_global_id("Message", 1), to_global_id("Campaign", 2**62)):
        response = await export(api, gid)
        assert response.status_code == 404, gid
        assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_without_a_valid_key_is_401(api: Api) -> None:
    campaign = await api.ready_campaign(1)
    url = f"/campaigns/{campaign['id']}/report.csv"
    for headers in ({}, {"Authorization": "Bearer cmp_wrong"}):
        response = await api.http.get(url, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert phone(0) not in response.text


async def test_export_says_who_replied_and_what_each_message_was_billed_as(api: Api) -> None:
    campaign = await campaign_in(api, CampaignStatus.PROCESSING, recipients=2)
    pk = expect_id(campaign["id"], "Campaign")
    await settle_outcomes(pk, sent=2, failed=0)
    first, second = await Message.filter(campaign_id=pk).order_by("id").values_list("id", flat=True)
    replied = datetime(2030, 1, 1, 12, tzinfo=UTC)
    await Message.filter(id=first).update(replied_at=replied, billable_category="marketing")
    header, rows = rows_of(await export(api, campaign["id"]))
    # the later columns come after `variables`, so a reader by position keeps its own
    assert header[-3:] == ["variables", "replied_at", "billable_category"]
    assert datetime.fromisoformat(rows[0]["replied_at"]) == replied and rows[0]["billable_category"] == "marketing"
    assert rows[1]["replied_at"] == "" and rows[1]["billable_category"] == ""
    assert json.loads(rows[0]["variables"]) == {"name": "User 0"} and second
