"""schema/cost.py: what an operation costs (fields, pages from literals and variables,
estimates, fragments, aliases, directives, interfaces), every client query of the repo
under the limit, and the limit itself on the served schema over HTTP and both
WebSocket protocols: refused before anything runs, with the cost and the limit."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    DocumentNode,
    GraphQLObjectType,
    OperationDefinitionNode,
    get_introspection_query,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
    parse,
    validate,
)
from starlette.applications import Starlette

import schema.cost as cost_module
from domain.ids import expect_id
from models import Campaign
from schema.app import schema
from schema.cost import ESTIMATES, PAGED, query_cost
from services.reads import CAMPAIGNS_PAGE, MAX_PAGE, MESSAGES_PAGE
from settings import DEVELOPMENT
from tests.conftest import Api
from tests.wsclient import LEGACY_WS, TRANSPORT_WS, connect
from watch.watcher import QUERY as WATCH_QUERY

ROOT = Path(__file__).resolve().parents[2]
GRAPHQL = schema._schema
LIMIT = DEVELOPMENT.max_query_cost

#: the issue's query: 30 aliases x campaigns(first: 100) x messages(first: 50)
ISSUE = (
    "{ "
    + " ".join(
        f"c{i}: campaigns(first: 100) {{ edges {{ node {{ messages(first: 50) {{ edges {{ node {{ id }} }} }} }} }} }}"
        for i in range(30)
    )
    + " }"
)
#: one alias: the connection 1, and 100 x (edge 1, node 1, messages 1 + 50 x (edge 1, node 1))
ISSUE_COST = 30 * (1 + 100 * (2 + 1 + 50 * 2))


def cost(query: str, **variables: Any) -> int:
    document = parse(query)
    assert validate(GRAPHQL, document) == [], query  # the cost is of valid documents
    return query_cost(GRAPHQL, document, None, variables)


# --- the model ------------------------------------------------------------------------


def test_an_object_costs_one_and_its_scalars_nothing_but_a_count_of_its_own() -> None:
    assert cost("{ viewer { id name } }") == 1
    assert cost("{ campaign(id: 1) { id name body status allowedActions stats { total sent } } }") == 2
    # the connection, its count, pageInfo, and hasNextPage (an EXISTS when a cursor is given)
    assert cost("{ campaigns(first: 0) { totalCount pageInfo { endCursor hasNextPage } } }") == 1 + 1 + 1 + 1
    assert cost("{ __typename viewer { __typename } }") == 1


def test_a_connection_counts_its_first_capped_or_the_schemas_default() -> None:
    page = "campaigns{args} {{ edges {{ node {{ id }} }} }}"
    assert cost("{ " + page.format(args="(first: 7)") + " }") == 1 + 7 * 2
    assert cost("{ " + page.format(args="") + " }") == 1 + CAMPAIGNS_PAGE * 2
    assert cost("{ " + page.format(args="(first: null)") + " }") == 1 + CAMPAIGNS_PAGE * 2  # the resolver's too
    assert cost("{ " + page.format(args="(first: 5000)") + " }") == 1 + MAX_PAGE * 2
    assert cost("{ " + page.format(args="(first: -3)") + " }") == 1  # refused by the resolver anyway
    nested = "{ campaign(id: 1) { messages { edges { node { id } } } } }"
    assert cost(nested) == 1 + 1 + MESSAGES_PAGE * 2


def test_last_counts_as_first_does() -> None:
    page = "{{ campaigns({args}) {{ edges {{ node {{ id }} }} }} }}"
    assert cost(page.format(args="last: 4")) == 1 + 4 * 2
    assert cost(page.format(args="last: 500")) == 1 + MAX_PAGE * 2
    assert cost(page.format(args="first: 3, last: 9")) == 1 + 9 * 2  # refused by the resolver; the larger
    by_variable = "query($l: Int) { campaigns(last: $l) { edges { node { id } } } }"
    assert cost(by_variable, l=6) == 1 + 6 * 2
    assert cost(by_variable) == 1 + CAMPAIGNS_PAGE * 2  # neither given: first's default


def test_first_from_a_variable_its_default_or_null() -> None:
    query = "query($n: Int) { campaigns(first: $n) { edges { node { id } } } }"
    assert cost(query, n=42) == 1 + 42 * 2
    assert cost(query) == 1 + CAMPAIGNS_PAGE * 2
    assert cost(query, n=None) == 1 + CAMPAIGNS_PAGE * 2
    assert cost(query, n=10**9) == 1 + MAX_PAGE * 2
    assert cost(query, n="100") == 1 + MAX_PAGE * 2  # not an Int: the most it could be (execution refuses it)
    defaulted = "query($n: Int = 3) { campaigns(first: $n) { edges { node { id } } } }"
    assert cost(defaulted) == 1 + 3 * 2
    assert cost(defaulted, n=9) == 1 + 9 * 2
    assert cost(defaulted, n=None) == 1 + CAMPAIGNS_PAGE * 2  # an explicit null overrides the default


def test_lists_without_a_size_count_their_estimate() -> None:
    events, buckets, points = ESTIMATES["CampaignEvent"], ESTIMATES["FailureBucket"], ESTIMATES["TimelinePoint"]
    query = "{ campaign(id: 1) { events { at } report { failuresByCode { code } timeline { at sent } } } }"
    assert cost(query) == 1 + events + 1 + buckets + points
    assert cost("{ apiKeys { id scopes } }") == ESTIMATES["ApiKey"]


def test_the_issues_query_multiplies_through_nesting_and_aliases() -> None:
    assert cost(ISSUE) == ISSUE_COST == 309_030
    assert ISSUE_COST > LIMIT


def test_named_and_inline_fragments_cost_what_they_expand_to() -> None:
    written_out = "{ campaigns(first: 100) { edges { node { id messages(first: 50) { edges { node { id } } } } } } }"
    with_fragments = """
      query { campaigns(first: 100) { ...Page } }
      fragment Page on CampaignConnection { edges { node { ...Row ... on Campaign { messages(first: 50) { ...Msgs } } } } }
      fragment Row on Campaign { id }
      fragment Msgs on MessageConnection { edges { ... { node { id } } } }
    """
    assert cost(with_fragments) == cost(written_out) == 1 + 100 * (2 + 1 + 50 * 2)
    # fragments on an interface apply to the object types implementing it
    on_node = "{ campaign(id: 1) { ...N } } fragment N on Node { ... on Campaign { events { at } } }"
    assert cost(on_node) == 1 + ESTIMATES["CampaignEvent"]


def test_one_response_key_is_merged_as_execution_merges_it_and_aliases_count_apart() -> None:
    once = "{ campaigns(first: 10) { edges { node { id } } } }"
    twice = "{ campaigns(first: 10) { edges { node { id } } } campaigns(first: 10) { edges { node { name } } } }"
    aliased = "{ a: campaigns(first: 10) { edges { node { id } } } b: campaigns(first: 10) { edges { node { id } } } }"
    assert cost(twice) == cost(once) == 21
    assert cost(aliased) == 2 * cost(once)


def test_skip_and_include_are_honoured_with_literals_and_variables() -> None:
    query = (
        "query($with: Boolean!) { viewer { id } campaigns(first: 10) @include(if: $with) { edges { node { id } } } }"
    )
    assert cost(query, **{"with": True}) == 1 + 21
    assert cost(query, **{"with": False}) == 1
    assert cost("{ viewer @skip(if: true) { id } campaign(id: 1) @skip(if: false) { id } }") == 1


def test_on_an_interface_the_costliest_object_type_counts() -> None:
    query = """{ node(id: "x") {
      id
      ... on Campaign { messages(first: 100) { edges { node { id } } } }
      ... on Message { phone }
    } }"""
    assert cost(query) == 1 + 1 + 100 * 2


def test_introspection_costs_nothing() -> None:
    assert cost(get_introspection_query(descriptions=True, input_value_deprecation=True)) == 0


def test_every_list_of_objects_in_the_schema_has_a_declared_size() -> None:
    """A new list field fails here until schema/cost.py declares how big it gets."""
    undeclared = []
    for kind in GRAPHQL.type_map.values():
        if not isinstance(kind, GraphQLObjectType) or kind.name.startswith("__"):
            continue
        for name, field in kind.fields.items():
            item = get_named_type(field.type)
            if not is_list_type(get_nullable_type(field.type)) or is_leaf_type(item):  # type: ignore[arg-type]
                continue
            connection_edges = name == "edges" and kind.name.endswith("Connection")
            if (kind.name, name) not in PAGED and item.name not in ESTIMATES and not connection_edges:
                undeclared.append(f"{kind.name}.{name}: [{item.name}]")
    assert undeclared == [], "declare their size in schema/cost.py (PAGED or ESTIMATES)"
    for kind_name, name in PAGED:  # no stale entry, and each is sized by an argument
        owner = GRAPHQL.get_type(kind_name)
        assert isinstance(owner, GraphQLObjectType) and "first" in owner.fields[name].args, (kind_name, name)
    assert set(ESTIMATES) <= set(GRAPHQL.type_map), set(ESTIMATES) - set(GRAPHQL.type_map)


# --- every client query of the repo is under the limit -----------------------------

#: `const NAME = "…"` or `const NAME = \`…\`` (with ${NAME} of earlier ones), exported or not
JS_STRING = re.compile(r'^\s*(?:export )?const (\w+) = (?:"([^"\n]*)"|`([^`]*)`);', re.MULTILINE)


def _js_strings(path: Path) -> dict[str, str]:
    """The string constants of a JS module, template literals filled in with earlier
    ones (any other `${…}` is left as it is, and would not parse as GraphQL)."""
    found: dict[str, str] = {}
    for name, plain, template in JS_STRING.findall(path.read_text()):
        found[name] = plain or re.sub(r"\$\{(\w+)\}", lambda m: found.get(m[1], m[0]), template)
    return found


def _dashboard() -> dict[str, tuple[str, dict[str, Any]]]:
    """web/dashboard/documents.js: each document with the variables it is sent with."""
    path = ROOT / "web" / "dashboard" / "documents.js"
    strings = _js_strings(path)
    page_size = int(
        re.findall(r"^const PAGE_SIZE = (\d+);", (ROOT / "web/dashboard/view-list.js").read_text(), re.M)[0]
    )
    documents: dict[str, tuple[str, dict[str, Any]]] = {
        name: (text, {})
        for name, text in strings.items()
        if name.isupper() and text.lstrip().startswith(("query", "mutation", "subscription"))
    }
    documents["CAMPAIGNS"] = (strings["CAMPAIGNS"], {"first": page_size})
    documents["CAMPAIGNS (a full page)"] = (strings["CAMPAIGNS"], {"first": MAX_PAGE})
    # ACTION_MUTATIONS are built by `mutation(field, args)`; only the selection costs
    source = path.read_text()
    assert "=> `mutation(${declared}) { result: ${field}(${args}) { ${PAYLOAD} } }`;" in source
    for field in re.findall(r'\b\w+: mutation\("(\w+)"', source):
        documents[f"ACTION_MUTATIONS {field}"] = (f"mutation {{ result: {field} {{ {strings['PAYLOAD']} }} }}", {})
    assert {"VIEWER", "CAMPAIGNS", "CAMPAIGN", "TIMELINE", "PROGRESS", "STATUS_CHANGES"} <= set(documents)
    assert len([k for k in documents if k.startswith("ACTION")]) >= 10
    return documents


def _readme() -> dict[str, tuple[str, dict[str, Any]]]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```graphql\n(.*?)```", text, re.DOTALL)
    blocks += [json.loads(f'"{q}"') for q in re.findall(r'"query":"((?:[^"\\]|\\.)*)"', text)]
    assert len(blocks) >= 7
    return {f"README {i}": (block, {}) for i, block in enumerate(blocks)}


def _graphiql() -> dict[str, tuple[str, dict[str, Any]]]:
    """What GraphiQL sends: its introspection query, and the served page's first query
    (web/graphiql/page.js, where the project serves its own GraphiQL page; strawberry's
    page starts with comments only)."""
    documents: dict[str, tuple[str, dict[str, Any]]] = {
        "GraphiQL introspection": (get_introspection_query(True, True, True, True, True), {})
    }
    page = ROOT / "web" / "graphiql" / "page.js"
    if page.exists():
        documents["GraphiQL first query"] = (_js_strings(page)["FIRST_QUERY"], {})
    return documents


def test_every_client_query_of_the_repo_costs_less_than_the_limit() -> None:
    documents = {**_dashboard(), **_readme(), **_graphiql(), "campaigns watch": (WATCH_QUERY, {})}
    costs = {}
    for name, (text, variables) in documents.items():
        parsed = parse(text)
        operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
        fragments = [d for d in parsed.definitions if not isinstance(d, OperationDefinitionNode)]
        for i, operation in enumerate(operations):  # a README block may show two, each sent alone
            document = DocumentNode(definitions=(operation, *fragments))
            if not name.startswith("ACTION_MUTATIONS"):  # those are sent with arguments
                assert validate(GRAPHQL, document) == [], name
            costs[f"{name} #{i}"] = query_cost(GRAPHQL, document, None, variables)
    worst = max(costs, key=costs.__getitem__)
    # room to grow; the worst is the README's list with history and report (1,444)
    assert costs[worst] <= LIMIT / 5, (worst, costs[worst])


# --- the limit on the served schema ------------------------------------------------


def _refusal(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("data") is None, body
    [error] = body["errors"]
    return dict(error)


async def test_the_issues_query_is_refused_with_its_cost_and_the_limit(api: Api) -> None:
    error = _refusal(await api.raw(ISSUE))
    assert (
        error["message"]
        == "This query would cost 309,030 (limit 10,000): ask for fewer items per page or fewer aliases."
    )
    assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "cost": ISSUE_COST, "limit": LIMIT}
    assert error["locations"] == [{"line": 1, "column": 1}]


async def test_first_given_as_a_variable_is_counted(api: Api) -> None:
    query = (
        "query($n: Int) { campaigns(first: $n) { edges { node { messages(first: $n) { edges { node { id } } } } } } }"
    )
    error = _refusal(await api.raw(query, n=100))
    assert error["extensions"]["cost"] == 1 + 100 * (2 + 1 + 100 * 2)
    data = await api.gql(query, n=10)  # the same document, a small page: runs
    assert data == {"campaigns": {"edges": []}}


async def test_fragments_and_inline_fragments_are_counted_as_expanded(api: Api) -> None:
    query = (
        "query { " + " ".join(f"c{i}: campaigns(first: 100) {{ ...Page }}" for i in range(30)) + " }"
        " fragment Page on CampaignConnection { edges { node { ... on Campaign { messages(first: 50) { ...M } } } } }"
        " fragment M on MessageConnection { edges { ... { node { id } } } }"
    )
    assert _refusal(await api.raw(query))["extensions"]["cost"] == ISSUE_COST


async def test_a_big_legit_page_is_allowed(api: Api) -> None:
    campaign = await api.ready_campaign(3)
    query = """query($id: ID!) {
      campaigns(first: 100) { totalCount edges { node { id name stats { total } events { to at } } } }
      campaign(id: $id) { messages(first: 100) { totalCount edges { node { id phone status } } } }
    }"""
    data = await api.gql(query, id=campaign["id"])
    assert data["campaigns"]["totalCount"] == 1
    assert len(data["campaign"]["messages"]["edges"]) == 3


async def test_a_configured_limit_refuses_a_mutation_before_anything_runs(
    app: Starlette, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.state._state, "settings", dataclasses.replace(app.state.settings, max_query_cost=5))
    mutation = 'mutation { createCampaign(input: {name: "n", body: "b"}) { campaign { id stats { total } } userErrors { code } } }'
    error = _refusal(await api.raw(mutation))
    assert error["message"].startswith("This mutation would cost 8 (limit 5)"), error
    assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "cost": 8, "limit": 5}
    assert await Campaign.filter(workspace_id=api.principal.workspace_id).count() == 0


async def test_over_graphql_transport_ws_a_query_is_refused_too(api: Api) -> None:
    async with connect(str(api.http.base_url).rstrip("/"), api.key, TRANSPORT_WS) as s:
        op = await s.subscribe(ISSUE)
        message = await s.next()
    assert (message["type"], message["id"]) == ("error", op), message
    [error] = message["payload"]
    assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "cost": ISSUE_COST, "limit": LIMIT}


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_subscription_over_the_limit_is_refused_before_it_subscribes(
    app: Starlette, api: Api, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    campaign = await api.ready_campaign(1)
    progress = "subscription($id: ID!) { campaignProgress(id: $id) { status stats { total } } }"
    url = str(api.http.base_url).rstrip("/")
    with monkeypatch.context() as patch:
        patch.setitem(app.state._state, "settings", dataclasses.replace(app.state.settings, max_query_cost=1))
        async with connect(url, api.key, protocol) as s:
            op = await s.subscribe(progress, id=campaign["id"])
            message = await s.next()
            assert (message["type"], message["id"]) == ("error", op), message
            # graphql-transport-ws sends the list of errors, graphql-ws the first one
            error = message["payload"][0] if protocol == TRANSPORT_WS else message["payload"]
            assert error["message"] == (
                "This subscription would cost 2 (limit 1): ask for fewer items per page or fewer aliases."
            )
            assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "cost": 2, "limit": 1}
            pk = expect_id(campaign["id"], "Campaign")
            assert not [key for key in app.state.broadcaster._groups if key[0] == pk]  # it never joined a group
    async with connect(url, api.key, protocol) as s:  # at the default limit it runs
        await s.subscribe(progress, id=campaign["id"])
        assert (await s.data())["campaignProgress"]["stats"]["total"] == 1


async def test_an_operation_without_variables_is_costed_once_and_refused_the_same_each_time(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    walks: list[int] = []
    walk = cost_module.query_cost

    def counted(*args: Any) -> int:
        walks.append(1)
        return walk(*args)

    monkeypatch.setattr(cost_module, "query_cost", counted)
    query = ISSUE + f" # {uuid.uuid4()}"  # a text no request sent before
    first, again = _refusal(await api.raw(query)), _refusal(await api.raw(query))
    assert first == again and first["extensions"]["cost"] == ISSUE_COST
    assert len(walks) == 1
    variables = "query($n: Int) { campaigns(first: $n) { edges { node { id } } } }"
    await api.gql(variables, n=1)
    await api.gql(variables, n=2)
    assert len(walks) == 3  # with variables: walked per request
