"""schema/optouts.py over HTTP: the opt-out list as a Relay connection, its mutations
(and every bad input of theirs: a clear error naming the field, nothing written), the
workspace's stop keywords; and the numbers that came with them on a campaign (replied,
billable per category, nextSendAt)."""

from __future__ import annotations

from datetime import UTC, datetime

from graphql import parse

from domain.ids import expect_id
from domain.lifecycle import CampaignStatus
from domain.optouts import DEFAULT_STOP_KEYWORDS, MAX_OPT_OUTS_PER_CALL, OptOutSource
from models import Campaign, CampaignBillable, Message, OptOut, Workspace
from schema.app import schema
from schema.cost import query_cost
from services import db, optouts
from tests.conftest import Api, phone
from tests.schema.states import campaign_in, settle_outcomes

ADD = "mutation($p: [String!]!) { addOptOuts(phones: $p) { added alreadyOptedOut invalid { index phone reason } userErrors { field message code } } }"
REMOVE = (
    "mutation($p: String!) { removeOptOut(phone: $p) { optOut { id phone source } userErrors { field message code } } }"
)
KEYWORDS = (
    "mutation($k: [String!]!) { setStopKeywords(keywords: $k) { stopKeywords userErrors { field message code } } }"
)
LIST = """query($first: Int, $after: String, $last: Int, $before: String, $search: String, $source: OptOutSource) {
  optOuts(first: $first, after: $after, last: $last, before: $before, search: $search, source: $source) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id phone source detail createdAt } } } }"""


async def listed(api: Api) -> list[str]:
    rows = await OptOut.filter(workspace_id=api.principal.workspace_id).order_by("id").values_list("phone", flat=True)
    return [str(p) for p in rows]


async def test_add_list_and_remove(api: Api, other_api: Api) -> None:
    added = (await api.gql(ADD, p=[phone(1), "+1 415 200 0002", "12345", phone(1)]))["addOptOuts"]
    assert (added["added"], added["alreadyOptedOut"], added["userErrors"]) == (2, 1, [])
    assert [(i["index"], i["phone"]) for i in added["invalid"]] == [(2, "12345")]
    page = (await api.gql(LIST, first=1))["optOuts"]
    assert page["totalCount"] == 2 and page["pageInfo"]["hasNextPage"] is True
    (edge,) = page["edges"]
    assert (edge["node"]["phone"], edge["node"]["source"], edge["node"]["detail"]) == (
        phone(2),
        "MANUAL",
        "added by tester",
    )
    rest = (await api.gql(LIST, first=5, after=page["pageInfo"]["endCursor"]))["optOuts"]
    assert [e["node"]["phone"] for e in rest["edges"]] == [phone(1)] and rest["pageInfo"]["hasPreviousPage"] is True
    back = (await api.gql(LIST, last=1))["optOuts"]
    assert [e["node"]["phone"] for e in back["edges"]] == [phone(1)]
    node = await api.gql("query($id: ID!) { node(id: $id) { ... on OptOut { phone source } } }", id=edge["node"]["id"])
    assert node["node"] == {"phone": phone(2), "source": "MANUAL"}
    assert (await other_api.gql("query($id: ID!) { node(id: $id) { id } }", id=edge["node"]["id"]))["node"] is None
    assert (await other_api.gql(LIST))["optOuts"]["totalCount"] == 0
    removed = (await api.gql(REMOVE, p=phone(2)))["removeOptOut"]
    assert removed["userErrors"] == [] and removed["optOut"]["phone"] == phone(2)
    assert await listed(api) == [phone(1)]


async def test_search_and_source_filter_the_list(api: Api) -> None:
    now = datetime.now(UTC)
    async with db.in_transaction() as conn:
        await optouts.learn(
            conn,
            api.principal.workspace_id,
            [
                optouts.Entry(phone(10), OptOutSource.KEYWORD, 'replied "STOP"', now),
                optouts.Entry(phone(11), OptOutSource.USER_PREFERENCES, None, now),
                optouts.Entry(phone(12), OptOutSource.ERROR_131050, None, now),
            ],
        )
    keyword = (await api.gql(LIST, source="KEYWORD"))["optOuts"]
    assert [e["node"]["phone"] for e in keyword["edges"]] == [phone(10)] and keyword["totalCount"] == 1
    found = (await api.gql(LIST, search="(415) 200-0011"))["optOuts"]
    assert [e["node"]["source"] for e in found["edges"]] == ["USER_PREFERENCES"]
    assert (await api.gql(LIST, search="999999"))["optOuts"]["totalCount"] == 0


async def test_bad_input_of_add_opt_outs_names_the_field_and_writes_nothing(api: Api) -> None:
    many = (await api.gql(ADD, p=[phone(i) for i in range(MAX_OPT_OUTS_PER_CALL + 1)]))["addOptOuts"]
    assert [(e["field"], e["code"]) for e in many["userErrors"]] == [(["phones"], "LIMIT_EXCEEDED")]
    assert "10,000" in many["userErrors"][0]["message"]
    invalid = (await api.gql(ADD, p=["", "hello", "+999"]))["addOptOuts"]
    assert invalid["added"] == 0 and [i["index"] for i in invalid["invalid"]] == [0, 1, 2]
    assert all(i["reason"] for i in invalid["invalid"])
    assert await listed(api) == []
    pages = await api.raw(LIST, first=-1)
    assert pages["errors"][0]["extensions"] == {"code": "VALIDATION", "field": ["first"]}


async def test_bad_input_of_remove_opt_out_names_the_phone(api: Api) -> None:
    await api.gql(ADD, p=[phone(20)])
    for given, code in (("not a phone", "VALIDATION"), (phone(21), "NOT_FOUND")):
        payload = (await api.gql(REMOVE, p=given))["removeOptOut"]
        assert payload["optOut"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["phone"], code)]
    assert await listed(api) == [phone(20)]


async def test_stop_keywords_are_the_defaults_until_set_and_bad_ones_are_named(api: Api) -> None:
    viewer = "{ viewer { stopKeywords } }"
    assert (await api.gql(viewer))["viewer"]["stopKeywords"] == list(DEFAULT_STOP_KEYWORDS)
    saved = (await api.gql(KEYWORDS, k=["Stop", " ARRÊT ", "stop"]))["setStopKeywords"]
    assert saved == {"stopKeywords": ["Stop", "ARRÊT"], "userErrors": []}
    for keywords, fields in (
        ([], [["keywords"]]),
        (["STOP", " ", "x" * 41], [["keywords", "1"], ["keywords", "2"]]),
        ([f"K{i}" for i in range(51)], [["keywords"]]),
    ):
        refused = (await api.gql(KEYWORDS, k=keywords))["setStopKeywords"]
        assert refused["stopKeywords"] is None
        assert [e["field"] for e in refused["userErrors"]] == fields and {e["code"] for e in refused["userErrors"]} == {
            "VALIDATION"
        }
    assert (await api.gql(viewer))["viewer"]["stopKeywords"] == ["Stop", "ARRÊT"]  # nothing written
    assert (await Workspace.get(id=api.principal.workspace_id)).stop_keywords == '["Stop", "ARR\\u00caT"]'


async def test_a_campaign_shows_replies_billable_counts_and_when_it_sends_next(api: Api) -> None:
    view = await campaign_in(api, CampaignStatus.PROCESSING, recipients=4)
    pk = expect_id(view["id"], "Campaign")
    await settle_outcomes(pk, sent=3, failed=0)
    first = await Message.filter(campaign_id=pk).order_by("id").first()
    assert first is not None
    await Message.filter(id=first.id).update(replied_at=datetime.now(UTC))
    await Campaign.filter(id=pk).update(replied=1, next_send_at=datetime(2030, 1, 1, 9, tzinfo=UTC))
    await CampaignBillable.create(campaign_id=pk, category="utility", count=1)
    await CampaignBillable.create(campaign_id=pk, category="marketing", count=2)
    data = await api.gql(
        "query($id: ID!) { campaign(id: $id) { nextSendAt stats { replied } report { billable { category count } "
        "failuresByCode { code } } } }",
        id=view["id"],
    )
    campaign = data["campaign"]
    assert campaign["stats"]["replied"] == 1 and campaign["nextSendAt"] == "2030-01-01T09:00:00+00:00"
    assert campaign["report"]["billable"] == [
        {"category": "marketing", "count": 2},
        {"category": "utility", "count": 1},
    ]
    row = (await api.gql("{ campaigns(first: 1) { edges { node { nextSendAt stats { replied } } } } }"))["campaigns"]
    assert row["edges"][0]["node"] == {"nextSendAt": "2030-01-01T09:00:00+00:00", "stats": {"replied": 1}}


def test_the_list_costs_what_its_page_holds() -> None:
    one_page = parse("{ optOuts(first: 100) { totalCount edges { node { id phone } } } }")
    assert query_cost(schema._schema, one_page) == 1 + 1 + 100 * 2
    billable = parse("{ campaigns(first: 10) { edges { node { report { billable { count } } } } } }")
    assert query_cost(schema._schema, billable) == 1 + 10 * (1 + 1 + 1 + 5)
