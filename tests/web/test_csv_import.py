"""`POST /campaigns/{id}/recipients`: a text/csv upload of recipients over real HTTP.

The import is one transaction: a file is added whole (valid rows; invalid ones are
reported by row number) or, when the file itself is broken, not at all.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from domain.ids import expect_id, to_global_id
from domain.lifecycle import CampaignStatus
from domain.messages import MAX_VARIABLES_BYTES
from models import Campaign, Message, OptOut
from tests.conftest import Api, phone
from tests.schema.states import campaign_in

VIEW = """query($id: ID!) { campaign(id: $id) {
  status version
  messages(first: 100) { edges { node { phone variables } } }
  stats { total pending }
} }"""
REPORT_KEYS = {"added", "duplicates", "optedOut", "invalidCount", "invalid"}


async def upload(
    api: Api,
    gid: str,
    body: bytes | str,
    *,
    content_type: str | None = "text/csv",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = dict(api.headers if headers is None else headers)
    if content_type is not None:
        sent["Content-Type"] = content_type
    content = body.encode() if isinstance(body, str) else body
    return await api.http.post(f"/campaigns/{gid}/recipients", content=content, headers=sent)


async def imported(api: Api, gid: str, body: bytes | str) -> dict[str, Any]:
    response = await upload(api, gid, body)
    assert response.status_code == 200, response.text
    report = response.json()
    assert set(report) == REPORT_KEYS, report
    return report


async def view(api: Api, gid: str) -> dict[str, Any]:
    campaign = (await api.gql(VIEW, id=gid))["campaign"]
    campaign["recipients"] = {e["node"]["phone"]: e["node"]["variables"] for e in campaign["messages"]["edges"]}
    return campaign


def refusal(response: httpx.Response, status: int, code: str, field: list[str] | None = None) -> str:
    assert response.status_code == status, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == code, error
    if field is not None:
        assert error["extensions"]["field"] == field, error
    return str(error["message"])


async def assert_counters_match_rows(gid: str) -> int:
    pk = expect_id(gid, "Campaign")
    campaign = await Campaign.get(id=pk)
    rows = await Message.filter(campaign_id=pk).count()
    assert campaign.total == campaign.pending == rows
    return rows


def csv_of(n: int, start: int = 0) -> str:
    return "phone,name\n" + "".join(f"{phone(start + i)},User {i}\n" for i in range(n))


# --- a good file ------------------------------------------------------------------------


async def test_good_file_adds_rows_and_normalises_phones(api: Api) -> None:
    campaign = await api.create_campaign()
    gid = campaign["id"]
    report = await imported(
        api,
        gid,
        "phone,name,code\n"
        '"+1 415 200 0001",Ann,A1\n'
        "+1-415-200-0002,Bob,B2\n"
        '"+1 (415) 200-0003",Cy,\n'
        "+14152000004,,D4\n"
        "0014152000005,Eve,E5\n",
    )
    assert report == {"added": 5, "duplicates": 0, "optedOut": 0, "invalidCount": 0, "invalid": []}
    after = await view(api, gid)
    assert after["stats"] == {"total": 5, "pending": 5}
    assert after["recipients"] == {
        "+14152000001": {"name": "Ann", "code": "A1"},
        "+14152000002": {"name": "Bob", "code": "B2"},
        "+14152000003": {"name": "Cy"},  # empty cells are omitted, not ""
        "+14152000004": {"code": "D4"},
        "+14152000005": {"name": "Eve", "code": "E5"},
    }
    assert await assert_counters_match_rows(gid) == 5


async def test_header_is_case_insensitive_and_a_bom_crlf_and_quoting_are_understood(api: Api) -> None:
    campaign = await api.create_campaign()
    body = (
        "\ufeffName, Phone ,Note\r\n"
        f'"Smith, Ann",{phone(1)},"two\r\nlines"\r\n'
        "\r\n"  # a blank line is not a row
        f'"Bob ""B"" Jones",{phone(2)},ünïcødé ✓\r\n'
    ).encode()
    report = await imported(api, campaign["id"], body)
    assert report["added"] == 2, report
    recipients = (await view(api, campaign["id"]))["recipients"]
    assert recipients == {
        phone(1): {"Name": "Smith, Ann", "Note": "two\r\nlines"},
        phone(2): {"Name": 'Bob "B" Jones', "Note": "ünïcødé ✓"},
    }


async def test_header_only_adds_nothing(api: Api) -> None:
    campaign = await api.create_campaign()
    report = await imported(api, campaign["id"], "phone,name\n")
    assert report == {"added": 0, "duplicates": 0, "optedOut": 0, "invalidCount": 0, "invalid": []}


@pytest.mark.parametrize("content_type", ["text/csv; charset=utf-8", "application/csv", "TEXT/CSV"])
async def test_csv_content_types_are_accepted(api: Api, content_type: str) -> None:
    campaign = await api.create_campaign()
    response = await upload(api, campaign["id"], csv_of(2), content_type=content_type)
    assert response.status_code == 200, response.text
    assert response.json()["added"] == 2


# --- rows refused one by one --------------------------------------------------------


async def test_invalid_phones_are_reported_by_row_and_the_rest_added(api: Api) -> None:
    campaign = await api.create_campaign()
    gid = campaign["id"]
    report = await imported(
        api,
        gid,
        "phone,name\n"
        f"{phone(1)},Ann\n"  # row 1
        "not a phone,Bob\n"  # row 2
        f"{phone(3)},Cy\n"  # row 3
        "+1 415 200,Dan\n"  # row 4: too short
        ",Eve\n"  # row 5: empty
        "4152000006,Fay\n"  # row 6: no country code
        f"{phone(7)},Gus\n",  # row 7
    )
    assert report["added"] == 3
    assert report["invalidCount"] == 4
    assert [(r["row"], r["phone"]) for r in report["invalid"]] == [
        (2, "not a phone"),
        (4, "+1 415 200"),
        (5, ""),
        (6, "4152000006"),
    ]
    assert all(isinstance(r["reason"], str) and r["reason"] for r in report["invalid"])
    assert report["invalid"][2]["reason"] == "phone is empty"
    assert "international format" in report["invalid"][3]["reason"]
    after = await view(api, gid)
    assert set(after["recipients"]) == {phone(1), phone(3), phone(7)}
    assert after["stats"] == {"total": 3, "pending": 3}


async def test_rows_with_the_wrong_number_of_columns_are_reported(api: Api) -> None:
    campaign = await api.create_campaign()
    gid = campaign["id"]
    report = await imported(
        api,
        gid,
        "phone,name,code\n"
        f"{phone(1)},Ann,A\n"
        f"{phone(2)},Bob\n"  # row 2: too few
        f"{phone(3)},Cy,C,extra\n"  # row 3: too many
        f"{phone(4)},Dan,D\n",
    )
    assert report["added"] == 2
    assert report["invalidCount"] == 2
    assert report["invalid"] == [
        {"row": 2, "phone": phone(2), "reason": "expected 3 columns, found 2"},
        {"row": 3, "phone": phone(3), "reason": "expected 3 columns, found 4"},
    ]
    assert set((await view(api, gid))["recipients"]) == {phone(1), phone(4)}


async def test_a_short_row_without_the_phone_column_is_reported(api: Api) -> None:
    campaign = await api.create_campaign()
    report = await imported(api, campaign["id"], f"name,code,phone\nAnn,A,{phone(1)}\nBob\n")
    assert report["added"] == 1
    assert report["invalid"] == [{"row": 2, "phone": "", "reason": "expected 3 columns, found 1"}]


async def test_duplicates_in_the_file_and_in_the_campaign_are_counted_not_added(api: Api) -> None:
    campaign = await api.create_campaign()
    gid = campaign["id"]
    await api.add(gid, (phone(1), {"name": "Already"}), (phone(2), None))
    report = await imported(
        api,
        gid,
        "phone,name\n"
        f"{phone(1)},Again\n"  # in the campaign
        "+1 415 200 0002,Again\n"  # in the campaign, another format
        f"{phone(3)},New\n"
        "+1-415-200-0003,Twice\n"  # twice in the file
        f"{phone(3)},Thrice\n"
        f"{phone(4)},New\n",
    )
    assert report == {"added": 2, "duplicates": 4, "optedOut": 0, "invalidCount": 0, "invalid": []}
    after = await view(api, gid)
    assert after["stats"] == {"total": 4, "pending": 4}
    # the first occurrence wins; existing recipients keep their variables
    assert after["recipients"] == {
        phone(1): {"name": "Already"},
        phone(2): {},
        phone(3): {"name": "New"},
        phone(4): {"name": "New"},
    }
    assert await assert_counters_match_rows(gid) == 4


async def test_opted_out_phones_are_skipped_and_counted(api: Api, other_api: Api) -> None:
    workspace = api.principal.workspace_id
    await OptOut.create(workspace_id=workspace, phone=phone(2))
    await OptOut.create(workspace_id=workspace, phone=phone(4))
    await OptOut.create(workspace_id=other_api.principal.workspace_id, phone=phone(1))  # not ours
    campaign = await api.create_campaign()
    gid = campaign["id"]
    report = await imported(
        api,
        gid,
        f"phone,name\n{phone(1)},A\n+1 415 200 0002,B\n{phone(3)},C\n{phone(4)},D\n",
    )
    assert report == {"added": 2, "duplicates": 0, "optedOut": 2, "invalidCount": 0, "invalid": []}
    after = await view(api, gid)
    assert set(after["recipients"]) == {phone(1), phone(3)}
    assert after["stats"] == {"total": 2, "pending": 2}


async def test_variables_over_the_size_limit_are_reported_by_row(api: Api) -> None:
    campaign = await api.create_campaign()
    report = await imported(
        api, campaign["id"], f"phone,note\n{phone(1)},short\n{phone(2)},{'x' * (MAX_VARIABLES_BYTES + 1)}\n"
    )
    assert report["added"] == 1
    assert [(r["row"], r["phone"]) for r in report["invalid"]] == [(2, phone(2))]
    assert str(MAX_VARIABLES_BYTES) in report["invalid"][0]["reason"]


# --- files refused whole: nothing written -------------------------------------------


async def _refused_whole(api: Api, body: bytes | str, status: int, code: str, field: list[str] | None = None) -> str:
    """Upload `body` into a campaign that already has 2 recipients; the file is refused
    and the campaign is exactly as it was."""
    campaign = await api.ready_campaign(2)
    gid = campaign["id"]
    before = await view(api, gid)
    message = refusal(await upload(api, gid, body), status, code, field)
    after = await view(api, gid)
    assert after == before
    assert await assert_counters_match_rows(gid) == 2
    return message


async def test_header_without_phone_column_is_422_and_nothing_written(api: Api) -> None:
    message = await _refused_whole(api, f"mobile,name\n{phone(10)},Ann\n", 422, "VALIDATION", ["csv", "phone"])
    assert "phone" in message


async def test_empty_file_is_422(api: Api) -> None:
    await _refused_whole(api, b"", 422, "VALIDATION", ["csv"])


@pytest.mark.parametrize("header", ["phone,name,name", "phone,,name", "phone,Name,NAME"])
async def test_header_with_repeated_or_empty_names_is_422(api: Api, header: str) -> None:
    await _refused_whole(api, f"{header}\n{phone(10)},a,b\n", 422, "VALIDATION", ["csv", "header"])


async def test_file_that_is_not_utf8_is_422_and_nothing_written(api: Api) -> None:
    message = await _refused_whole(api, b"phone,name\n+14152000001,\xff\xfe\n", 422, "VALIDATION", ["csv"])
    assert "UTF-8" in message


async def test_bad_bytes_after_many_good_rows_roll_the_whole_import_back(api: Api) -> None:
    # 6,000 good rows (past one write batch of 5,000 and many decode chunks), then a
    # Latin-1 byte: the rows already written inside the transaction are rolled back.
    body = csv_of(6_000, start=100).encode() + b"+14159999999,Ren\xe9\n"
    await _refused_whole(api, body, 422, "VALIDATION", ["csv"])


async def test_unterminated_quote_is_422_and_nothing_written(api: Api) -> None:
    message = await _refused_whole(api, f'phone,name\n{phone(10)},Ann\n{phone(11)},"Bob\n', 422, "VALIDATION", ["csv"])
    assert "malformed" in message


async def test_stray_quote_is_422(api: Api) -> None:
    await _refused_whole(api, f'phone,name\n{phone(10)},"Ann"x\n', 422, "VALIDATION", ["csv"])


async def test_malformed_after_many_good_rows_rolls_the_whole_import_back(api: Api) -> None:
    body = csv_of(6_000, start=100) + f'{phone(9_000)},"never closed\n'
    await _refused_whole(api, body, 422, "VALIDATION", ["csv"])


@pytest.mark.parametrize(
    "body",
    [
        b"phone,name\n+14152000010,A\x00nn\n",
        b"phone,name\n+14152000010,Ann\n+14152000011,\x00\n",
        b"phone,na\x00me\n+14152000010,Ann\n",
    ],
    ids=["in-a-cell", "a-whole-cell", "in-the-header"],
)
async def test_nul_byte_is_422_and_nothing_written(api: Api, body: bytes) -> None:
    await _refused_whole(api, body, 422, "VALIDATION", ["csv"])


async def test_a_cell_over_the_field_size_limit_is_422(api: Api) -> None:
    await _refused_whole(api, f"phone,name\n{phone(10)},{'x' * 70_000}\n", 422, "VALIDATION", ["csv"])


async def test_upload_larger_than_the_limit_is_413_and_nothing_written(
    api: Api, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = await api.ready_campaign(2)
    gid = campaign["id"]
    small = dataclasses.replace(app.state.settings, max_import_bytes=200)
    # setitem on the State's dict: pytest 9's setattr would take the attribute for
    # missing (State keeps it outside __dict__) and delete it on undo
    monkeypatch.setitem(app.state._state, "settings", small)
    fits = csv_of(5, start=10)
    assert len(fits) <= 200
    assert (await upload(api, gid, fits)).json()["added"] == 5
    too_big = csv_of(20, start=100)
    assert len(too_big) > 200
    message = refusal(await upload(api, gid, too_big), 413, "LIMIT_EXCEEDED", ["csv"])
    assert "200" in message
    # far over the limit: refused while the client is still sending, cleanly
    huge = csv_of(50_000, start=1_000)
    refusal(await upload(api, gid, huge), 413, "LIMIT_EXCEEDED", ["csv"])
    after = await view(api, gid)
    assert after["stats"] == {"total": 7, "pending": 7}
    assert await assert_counters_match_rows(gid) == 7


# --- refusals before the file is read -----------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "multipart/form-data; boundary=x", None])
async def test_wrong_content_type_is_415(api: Api, content_type: str | None) -> None:
    campaign = await api.create_campaign()
    response = await upload(api, campaign["id"], csv_of(2), content_type=content_type)
    assert response.status_code == 415, response.text
    assert response.json()["errors"][0]["extensions"]["field"] == ["content-type"]
    assert (await view(api, campaign["id"]))["stats"]["total"] == 0


async def test_campaign_not_in_draft_is_409_invalid_transition(api: Api) -> None:
    campaign = await campaign_in(api, CampaignStatus.QUEUED)
    gid = campaign["id"]
    message = refusal(await upload(api, gid, csv_of(3, start=50)), 409, "INVALID_TRANSITION")
    assert "QUEUED" in message
    after = await view(api, gid)
    assert after["status"] == "QUEUED"
    assert after["version"] == campaign["version"]
    assert after["stats"]["total"] == 3
    assert await assert_counters_match_rows(gid) == 3


async def test_another_workspaces_campaign_is_404(api: Api, other_api: Api) -> None:
    theirs = await other_api.create_campaign()
    refusal(await upload(api, theirs["id"], csv_of(2)), 404, "NOT_FOUND")
    assert (await view(other_api, theirs["id"]))["stats"]["total"] == 0


@pytest.mark.parametrize(
    "gid", ["not-an-id", to_global_id("Message", 1), to_global_id("Campaign", 2**62), "Q2FtcGFpZ246MA"]
)
async def test_malformed_or_unknown_id_is_404(api: Api, gid: str) -> None:
    refusal(await upload(api, gid, csv_of(2)), 404, "NOT_FOUND")


@pytest.mark.parametrize("authorization", [None, "Bearer cmp_wrong", "Basic abc"])
async def test_without_a_valid_key_is_401(api: Api, authorization: str | None) -> None:
    campaign = await api.create_campaign()
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await upload(api, campaign["id"], csv_of(2), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert (await view(api, campaign["id"]))["stats"]["total"] == 0


# --- volume ---------------------------------------------------------------------------


async def test_a_20000_row_import_is_complete_and_counted(api: Api) -> None:
    campaign = await api.create_campaign()
    gid = campaign["id"]
    rows = 20_000
    lines = ["phone,name,code"]
    for i in range(rows):
        lines.append(f"{phone(i)},User {i},C{i % 7}")
    lines.append(f"{phone(5)},Dup,X")  # one duplicate
    lines.append("bad,Bad,X")  # one invalid
    body = ("\n".join(lines) + "\n").encode()
    started = time.perf_counter()
    report = await imported(api, gid, body)
    elapsed = time.perf_counter() - started
    assert report["added"] == rows
    assert report["duplicates"] == 1
    assert report["invalidCount"] == 1
    assert report["invalid"][0]["row"] == rows + 2
    assert await assert_counters_match_rows(gid) == rows
    after = await view(api, gid)
    assert after["stats"] == {"total": rows, "pending": rows}
    pk = expect_id(gid, "Campaign")
    last = await Message.filter(campaign_id=pk, phone=phone(rows - 1)).first()
    assert last is not None
    variables = last.variables if isinstance(last.variables, dict) else json.loads(last.variables)
    assert variables == {"name": f"User {rows - 1}", "code": f"C{(rows - 1) % 7}"}
    assert elapsed < 10, f"20,000 rows took {elapsed:.1f}s"
