"""Queries: pagination, filters, node ids, messages, history, stats and the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.ids import expect_id, to_global_id
from domain.lifecycle import CampaignStatus
from domain.messages import FAILURE_TEXTS
from models import Campaign, Message
from tests.conftest import Api
from tests.schema.states import campaign_in, mutate, settle_outcomes

LIST = """query($first: Int, $after: String, $status: [CampaignStatus!], $search: String) {
  campaigns(first: $first, after: $after, status: $status, search: $search) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id name status } }
  }
}"""


async def test_campaigns_page_newest_first_with_keyset_cursors(api: Api) -> None:
    created = [(await api.create_campaign(name=f"Campaign {i:02d}"))["id"] for i in range(25)]
    seen: list[str] = []
    after = None
    while True:
        page = (await api.gql(LIST, first=10, after=after))["campaigns"]
        assert page["totalCount"] == 25
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    assert seen == list(reversed(created))


async def test_first_is_capped_at_one_hundred(api: Api) -> None:
    for i in range(101):
        await api.create_campaign(name=f"C{i}")
    page = (await api.gql(LIST, first=500))["campaigns"]
    assert len(page["edges"]) == 100 and page["pageInfo"]["hasNextPage"] and page["totalCount"] == 101
    assert (await api.gql(LIST, first=0))["campaigns"]["edges"] == []


async def test_status_filter_and_search(api: Api) -> None:
    await campaign_in(api, CampaignStatus.DRAFT)
    queued = await campaign_in(api, CampaignStatus.QUEUED)
    paused = await campaign_in(api, CampaignStatus.PAUSED)
    await mutate(
        api,
        "updateCampaign(input: $input)",
        input={"id": (await api.create_campaign())["id"], "name": "Black Friday"},
    )
    page = (await api.gql(LIST, status=["QUEUED", "PAUSED"]))["campaigns"]
    assert {e["node"]["id"] for e in page["edges"]} == {queued["id"], paused["id"]}
    assert page["totalCount"] == 2
    found = (await api.gql(LIST, search="friday"))["campaigns"]
    assert [e["node"]["name"] for e in found["edges"]] == ["Black Friday"]


async def test_other_workspaces_are_invisible(api: Api, other_api: Api) -> None:
    theirs = await other_api.create_campaign(name="Theirs")
    assert (await api.gql(LIST))["campaigns"]["totalCount"] == 0
    data = await api.gql("query($id: ID!) { campaign(id: $id) { id } node(id: $id) { id } }", id=theirs["id"])
    assert data == {"campaign": None, "node": None}


async def test_node_resolves_every_type_by_opaque_id(api: Api) -> None:
    campaign = await api.ready_campaign(2)
    message_pk = await Message.filter(campaign_id=expect_id(campaign["id"], "Campaign")).order_by("id").first()
    assert message_pk is not None
    message_id = to_global_id("Message", message_pk.id)
    query = """query($c: ID!, $m: ID!, $w: ID!) {
      c: node(id: $c) { __typename id ... on Campaign { name } }
      m: node(id: $m) { __typename id ... on Message { phone status } }
      w: node(id: $w) { __typename id ... on Workspace { name } }
      viewer { id name }
      bad: node(id: "garbage") { id }
    }"""
    data = await api.gql(query, c=campaign["id"], m=message_id, w=to_global_id("Workspace", api.principal.workspace_id))
    assert data["c"] == {"__typename": "Campaign", "id": campaign["id"], "name": "Spring sale"}
    assert data["m"]["__typename"] == "Message" and data["m"]["status"] == "PENDING"
    assert data["w"]["__typename"] == "Workspace" and data["viewer"] == {
        "id": data["w"]["id"],
        "name": "Test workspace",
    }
    assert data["bad"] is None
    assert "Campaign" not in campaign["id"]  # opaque


async def test_messages_page_and_filter_by_status(api: Api) -> None:
    campaign = await campaign_in(api, CampaignStatus.PROCESSING, recipients=7)
    await settle_outcomes(expect_id(campaign["id"], "Campaign"), sent=3, failed=2)
    query = """query($id: ID!, $after: String, $status: [MessageStatus!]) { campaign(id: $id) {
      messages(first: 2, after: $after, status: $status) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { id phone status errorCode attempts variables } }
      } } }"""
    phones: list[str] = []
    after = None
    while True:
        conn = (await api.gql(query, id=campaign["id"], after=after))["campaign"]["messages"]
        assert conn["totalCount"] == 7
        phones += [e["node"]["phone"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert len(phones) == len(set(phones)) == 7
    failed = (await api.gql(query, id=campaign["id"], status=["FAILED"]))["campaign"]["messages"]
    assert failed["totalCount"] == 2
    assert {e["node"]["errorCode"] for e in failed["edges"]} == {"131000"}
    assert failed["edges"][0]["node"]["variables"]["name"].startswith("User")


async def test_events_are_the_history_oldest_first(api: Api) -> None:
    campaign = await campaign_in(api, CampaignStatus.PAUSED)
    await mutate(api, "cancelCampaign(id: $id, reason: $reason)", id=campaign["id"], reason="no longer needed")
    data = await api.gql(
        "query($id: ID!) { campaign(id: $id) { events { from to action actor reason at } } }",
        id=campaign["id"],
    )
    history = [(e["from"], e["to"], e["action"], e["actor"]) for e in data["campaign"]["events"]]
    assert history == [
        (None, "DRAFT", "CREATE", "tester"),
        ("DRAFT", "QUEUED", "SEND_NOW", "tester"),
        ("QUEUED", "PAUSED", "PAUSE", "tester"),
        ("PAUSED", "CANCELLED", "CANCEL", "tester"),
    ]
    assert data["campaign"]["events"][-1]["reason"] == "no longer needed"


async def test_stats_rates_and_report(api: Api) -> None:
    campaign = await campaign_in(api, CampaignStatus.PROCESSING, recipients=10)
    pk = expect_id(campaign["id"], "Campaign")
    await settle_outcomes(pk, sent=6, failed=2, code="131026")
    # two of the sent were delivered, one of them read; an hour apart for the timeline
    sent_ids = await Message.filter(campaign_id=pk, status="SENT").order_by("id").values_list("id", flat=True)
    base = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)
    await Message.filter(id__in=sent_ids).update(sent_at=base)
    await Message.filter(id=sent_ids[0]).update(status="DELIVERED", delivered_at=base + timedelta(hours=1))
    await Message.filter(id=sent_ids[1]).update(
        status="READ", delivered_at=base + timedelta(hours=1), read_at=base + timedelta(hours=1)
    )
    await Campaign.filter(id=pk).update(delivered=2, read=1)
    query = """query($id: ID!) { campaign(id: $id) {
      stats { total pending sent delivered read failed cancelled progress deliveryRate readRate failureRate }
      report { partial csvUrl stats { total } failuresByCode { code message count }
               timeline(bucketSeconds: 3600) { at sent delivered read failed } } } }"""
    data = (await api.gql(query, id=campaign["id"]))["campaign"]
    assert data["stats"] == {
        "total": 10,
        "pending": 2,
        "sent": 6,
        "delivered": 2,
        "read": 1,
        "failed": 2,
        "cancelled": 0,
        "progress": 0.8,
        "deliveryRate": 2 / 6,
        "readRate": 0.5,
        "failureRate": 0.25,
    }
    report = data["report"]
    assert report["partial"] is True
    assert report["csvUrl"] == f"/campaigns/{campaign['id']}/report.csv"
    # the code in plain words (domain/messages.FAILURE_TEXTS), not the provider's text
    assert report["failuresByCode"] == [{"code": "131026", "message": FAILURE_TEXTS["131026"], "count": 2}]
    points = {p["at"]: p for p in report["timeline"]}
    first = points[datetime(2030, 1, 1, 12, tzinfo=UTC).isoformat()]
    second = points[datetime(2030, 1, 1, 13, tzinfo=UTC).isoformat()]
    assert (first["sent"], first["delivered"]) == (6, 0)
    assert (second["delivered"], second["read"]) == (2, 1)
    bad = await api.raw(
        "query($id: ID!) { campaign(id: $id) { report { timeline(bucketSeconds: 0) { at } } } }",
        id=campaign["id"],
    )
    assert bad["errors"][0]["extensions"]["field"] == ["bucketSeconds"]


async def test_duplicate_copies_content_and_recipients_but_not_outcomes(api: Api) -> None:
    from models import OptOut

    campaign = await campaign_in(api, CampaignStatus.PROCESSING, recipients=4)
    pk = expect_id(campaign["id"], "Campaign")
    await settle_outcomes(pk, sent=2, failed=1)
    opted = await Message.filter(campaign_id=pk).order_by("id").first()
    assert opted is not None
    await OptOut.create(workspace_id=api.principal.workspace_id, phone=opted.phone)
    payload = await mutate(api, "duplicateCampaign(id: $id, name: $name)", id=campaign["id"], name="Again")
    copy = payload["campaign"]
    assert (copy["name"], copy["status"]) == ("Again", "DRAFT")
    assert copy["stats"]["total"] == copy["stats"]["pending"] == 3  # the opted-out phone is left out
    statuses = await Message.filter(campaign_id=expect_id(copy["id"], "Campaign")).values_list("status", flat=True)
    assert set(statuses) == {"PENDING"}


PAGE = """query($first: Int, $after: String, $last: Int, $before: String, $search: String) {
  campaigns(first: $first, after: $after, last: $last, before: $before, search: $search) {
    totalCount edges { cursor node { id } }
    pageInfo { hasPreviousPage hasNextPage startCursor endCursor }
  }
}"""


async def test_campaigns_page_backward_with_last_and_before(api: Api) -> None:
    created = [(await api.create_campaign(name=f"Page {i}"))["id"] for i in range(7)]
    newest_first = list(reversed(created))
    pages: list[list[str]] = []
    before = None
    while True:
        page = (await api.gql(PAGE, last=3, before=before))["campaigns"]
        ids = [e["node"]["id"] for e in page["edges"]]
        info = page["pageInfo"]
        assert (info["startCursor"], info["endCursor"]) == (page["edges"][0]["cursor"], page["edges"][-1]["cursor"])
        assert info["hasNextPage"] == (before is not None)
        pages.append(ids)
        if not info["hasPreviousPage"]:
            break
        before = info["startCursor"]
    assert pages == [newest_first[4:7], newest_first[1:4], newest_first[0:1]]
    # forward, hasPreviousPage says whether anything lies before `after`
    second = await api.gql(PAGE, first=3, after=(await api.gql(PAGE, first=3))["campaigns"]["pageInfo"]["endCursor"])
    info = second["campaigns"]["pageInfo"]
    assert (info["hasPreviousPage"], info["hasNextPage"]) == (True, True)


async def test_an_empty_connection_has_null_cursors(api: Api) -> None:
    page = (await api.gql(PAGE, last=5, search="nothing like this"))["campaigns"]
    assert page["edges"] == [] and page["totalCount"] == 0
    assert page["pageInfo"] == {"hasPreviousPage": False, "hasNextPage": False, "startCursor": None, "endCursor": None}


async def test_last_alone_is_not_combined_with_the_default_first(api: Api) -> None:
    for i in range(3):
        await api.create_campaign(name=f"L{i}")
    literal = (await api.gql("{ campaigns(last: 2) { edges { node { name } } } }"))["campaigns"]
    assert [e["node"]["name"] for e in literal["edges"]] == ["L1", "L0"]
    # a $first the request leaves out is no first either
    by_variable = (await api.gql(PAGE, last=2))["campaigns"]
    assert len(by_variable["edges"]) == 2


@pytest.mark.parametrize(
    ("arguments", "field"),
    [("first: 2, last: 2", "last"), ("last: -1", "last"), ('before: "garbage"', "before"), ('after: "x"', "after")],
)
async def test_bad_page_arguments_are_validation_errors_naming_them(api: Api, arguments: str, field: str) -> None:
    body = await api.raw(f"{{ campaigns({arguments}) {{ totalCount }} }}")
    assert body["errors"][0]["extensions"] == {"code": "VALIDATION", "field": [field]}, body
    campaign = await api.create_campaign()
    query = f"query($id: ID!) {{ campaign(id: $id) {{ messages({arguments}) {{ totalCount }} }} }}"
    messages = await api.raw(query, id=campaign["id"])
    assert messages["errors"][0]["extensions"] == {"code": "VALIDATION", "field": [field]}, messages
    assert messages["errors"][0]["path"] == ["campaign", "messages"]


async def test_messages_page_backward_with_a_status_filter(api: Api) -> None:
    campaign = await campaign_in(api, CampaignStatus.PROCESSING, recipients=7)
    await settle_outcomes(expect_id(campaign["id"], "Campaign"), sent=3, failed=2)
    query = """query($id: ID!, $first: Int, $last: Int, $before: String, $status: [MessageStatus!]) {
      campaign(id: $id) { messages(first: $first, last: $last, before: $before, status: $status) {
        edges { node { id status } } pageInfo { hasPreviousPage hasNextPage startCursor }
      } } }"""
    forward = await api.gql(query, id=campaign["id"], first=10)
    oldest_first = [e["node"]["id"] for e in forward["campaign"]["messages"]["edges"]]
    collected: list[str] = []
    before = None
    while True:
        conn = (await api.gql(query, id=campaign["id"], last=2, before=before))["campaign"]["messages"]
        collected = [e["node"]["id"] for e in conn["edges"]] + collected
        if not conn["pageInfo"]["hasPreviousPage"]:
            break
        before = conn["pageInfo"]["startCursor"]
    assert collected == oldest_first and len(collected) == 7
    sent = (await api.gql(query, id=campaign["id"], last=2, status=["SENT"]))["campaign"]["messages"]
    assert [e["node"]["status"] for e in sent["edges"]] == ["SENT", "SENT"]
    assert (sent["pageInfo"]["hasPreviousPage"], sent["pageInfo"]["hasNextPage"]) == (True, False)
