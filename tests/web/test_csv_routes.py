"""web/csv_routes.py, the routes themselves: their refusals in the one error shape and
in which order, the size limit's edge, an upload cut off mid-body, and the report's
count beside its list of invalid rows. And the opt-out list's import and export
(`POST /opt-outs`, `GET /opt-outs.csv`).

What an import adds and refuses is tests/web/test_csv_import.py's, what an export
holds tests/web/test_csv_export.py's, the scopes each route asks
tests/schema/test_scopes.py's."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import logging
from datetime import datetime
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette

from domain.ids import expect_id
from models import Campaign, Message, OptOut
from services.keys import create_key
from services.recipients import MAX_LISTED_INVALID
from tests.conftest import Api, phone
from tests.waiting import until

IMPORT_ROUTE = "/campaigns/{id}/recipients"


def csv_of(n: int, start: int = 0) -> bytes:
    return ("phone,name\n" + "".join(f"{phone(start + i)},User {i}\n" for i in range(n))).encode()


async def upload(api: Api, gid: str, body: bytes, content_type: str = "text/csv") -> httpx.Response:
    headers = {**api.headers, "Content-Type": content_type}
    return await api.http.post(f"/campaigns/{gid}/recipients", content=body, headers=headers)


async def total(gid: str) -> tuple[int, int]:
    pk = expect_id(gid, "Campaign")
    return (await Campaign.get(id=pk)).total, await Message.filter(campaign_id=pk).count()


def counted(status: int) -> float:
    labels = {"method": "POST", "route": IMPORT_ROUTE, "status": str(status)}
    return REGISTRY.get_sample_value("campaigns_http_requests_total", labels) or 0.0


async def test_refusals_say_what_is_wrong_and_name_the_input_at_fault(api: Api) -> None:
    imported = await upload(api, "nope", csv_of(1))
    assert imported.status_code == 404
    assert imported.json() == {
        "errors": [{"message": "No campaign with id 'nope'.", "extensions": {"code": "NOT_FOUND", "field": ["id"]}}]
    }
    exported = await api.http.get("/campaigns/nope/report.csv", headers=api.headers)
    assert exported.status_code == 404
    assert exported.json() == imported.json()
    wrong_type = await upload(api, "nope", csv_of(1), content_type="application/json")
    assert wrong_type.status_code == 415  # the type is checked first: before the id, before the body
    assert wrong_type.json() == {
        "errors": [
            {
                "message": "Send the file as Content-Type: text/csv.",
                "extensions": {"code": "UNSUPPORTED_MEDIA_TYPE", "field": ["content-type"]},
            }
        ]
    }


async def test_an_upload_of_exactly_the_limit_is_taken_and_one_byte_more_is_refused(
    api: Api, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    gid = (await api.create_campaign())["id"]
    body = csv_of(60)
    assert len(body) > 1_000
    settings = app.state.settings
    # setitem on the State's dict: see tests/conftest.py's `app`
    monkeypatch.setitem(app.state._state, "settings", dataclasses.replace(settings, max_import_bytes=len(body) - 1))
    refused = await upload(api, gid, body)
    assert refused.status_code == 413
    assert refused.json()["errors"] == [
        {
            "message": f"The upload is larger than {len(body) - 1:,} bytes.",
            "extensions": {"code": "LIMIT_EXCEEDED", "field": ["csv"]},
        }
    ]
    assert await total(gid) == (0, 0)
    monkeypatch.setitem(app.state._state, "settings", dataclasses.replace(settings, max_import_bytes=len(body)))
    taken = await upload(api, gid, body)
    assert taken.status_code == 200, taken.text
    assert taken.json()["added"] == 60
    assert await total(gid) == (60, 60)


async def test_an_upload_cut_off_mid_body_writes_nothing_and_logs_no_error(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    gid = (await api.ready_campaign(2))["id"]
    before = counted(400)
    part = csv_of(200, start=100)
    url = urlsplit(str(api.http.base_url))
    _reader, writer = await asyncio.open_connection(url.hostname, url.port)
    head = (
        f"POST /campaigns/{gid}/recipients HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {api.key}\r\nContent-Type: text/csv\r\nContent-Length: {len(part) * 10}\r\n\r\n"
    )
    writer.write(head.encode() + part)  # a tenth of what it announced, then gone
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await until(lambda: counted(400) == before + 1, what="the interrupted upload answered 400")
    assert await total(gid) == (2, 2)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_the_report_counts_every_invalid_row_and_lists_the_first_thousand(api: Api) -> None:
    gid = (await api.create_campaign())["id"]
    bad = MAX_LISTED_INVALID + 5
    body = f"phone,name\n{phone(1)},A\n" + "".join(f"not-a-phone-{i},x\n" for i in range(bad)) + f"{phone(2)},B\n"
    response = await upload(api, gid, body.encode())
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["added"], report["duplicates"], report["optedOut"]) == (2, 0, 0)
    assert report["invalidCount"] == bad
    assert len(report["invalid"]) == MAX_LISTED_INVALID
    assert [r["row"] for r in report["invalid"]] == list(range(2, MAX_LISTED_INVALID + 2))
    assert set(report["invalid"][0]) == {"row", "phone", "reason"}
    assert report["invalid"][0]["phone"] == "not-a-phone-0"


@pytest.mark.parametrize(("method", "path"), [("GET", "recipients"), ("POST", "report.csv")])
async def test_a_method_the_route_does_not_take_is_refused_in_the_one_shape(api: Api, method: str, path: str) -> None:
    """web/errors.py: every error an HTTP edge answers has GraphQL's shape."""
    gid = (await api.ready_campaign(1))["id"]
    response = await api.http.request(method, f"/campaigns/{gid}/{path}", headers=api.headers)
    assert response.status_code == 405
    assert response.headers["allow"]
    assert response.headers["content-type"].startswith("application/json"), (response.headers, response.text)
    [error] = response.json()["errors"]
    assert error["message"] and error["extensions"]["code"]


# ------------------------------------------------------------ the opt-out list


async def upload_opt_outs(api: Api, body: bytes, content_type: str = "text/csv") -> httpx.Response:
    return await api.http.post("/opt-outs", content=body, headers={**api.headers, "Content-Type": content_type})


async def listed(api: Api) -> list[tuple[str, str, str | None]]:
    rows = (
        await OptOut.filter(workspace_id=api.principal.workspace_id)
        .order_by("id")
        .values_list("phone", "source", "detail")
    )
    return [(p, str(s), d) for p, s, d in rows]


async def test_the_opt_out_import_adds_valid_rows_and_lists_the_rest(api: Api) -> None:
    body = (
        f"Phone,detail\n{phone(1)},asked by e-mail\n12345,\n+1 415 200 0002,\n{phone(1)},again\ntoo,many,cells\n"
    ).encode()
    response = await upload_opt_outs(api, body)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["added"], report["alreadyOptedOut"], report["invalidCount"]) == (2, 1, 2)
    assert [(r["row"], r["phone"]) for r in report["invalid"]] == [(2, "12345"), (5, "too")]
    assert await listed(api) == [(phone(1), "MANUAL", "asked by e-mail"), (phone(2), "MANUAL", "CSV import by tester")]
    # again: nothing new, nothing rewritten
    assert (await upload_opt_outs(api, body)).json()["added"] == 0


async def test_a_broken_opt_out_file_adds_nothing_and_names_the_input(api: Api) -> None:
    for body, field in ((b"name\nAnn\n", ["csv", "phone"]), (b"phone\n\xff\xfe\n", ["csv"]), (b"", ["csv"])):
        response = await upload_opt_outs(api, body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["extensions"] == {"code": "VALIDATION", "field": field}
    wrong = await upload_opt_outs(api, f"phone\n{phone(3)}\n".encode(), content_type="application/json")
    assert wrong.status_code == 415 and wrong.json()["errors"][0]["extensions"]["field"] == ["content-type"]
    assert await listed(api) == []


async def test_the_opt_out_list_exports_oldest_first_with_its_sources(api: Api) -> None:
    await upload_opt_outs(api, f"phone\n{phone(4)}\n{phone(5)}\n".encode())
    response = await api.http.get("/opt-outs.csv", headers=api.headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="opt-outs.csv"' in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["phone", "source", "detail", "created_at"]
    assert [(r[0], r[1], r[2]) for r in rows[1:]] == [
        (phone(4), "MANUAL", "CSV import by tester"),
        (phone(5), "MANUAL", "CSV import by tester"),
    ]
    assert datetime.fromisoformat(rows[1][3]).tzinfo is not None


async def test_the_opt_out_routes_ask_write_to_import_and_read_to_export(api: Api) -> None:
    _, reader = await create_key(api.principal, "reader", ["read"])
    _, writer = await create_key(api.principal, "writer", ["write"])
    body = f"phone\n{phone(6)}\n".encode()
    refused = await api.http.post(
        "/opt-outs", content=body, headers={"Authorization": f"Bearer {reader}", "Content-Type": "text/csv"}
    )
    assert refused.status_code == 403 and refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await listed(api) == []
    assert (await api.http.get("/opt-outs.csv", headers={"Authorization": f"Bearer {writer}"})).status_code == 403
    assert (await api.http.get("/opt-outs.csv", headers={"Authorization": f"Bearer {reader}"})).status_code == 200
    assert (await api.http.get("/opt-outs.csv")).status_code == 401
