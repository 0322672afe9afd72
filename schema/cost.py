"""The cost of a GraphQL operation, and the limit on it (MAX_QUERY_COST, settings.py).

The depth, alias and token limits bound a document's shape, not how much it asks for:
30 aliases of `campaigns(first: 100)` each with `messages(first: 50)` is a short document
that returned 120,000 nodes in 9.9 s. The cost estimates the objects an operation
returns, before anything runs:

- an object field costs 1, times its items when it is a list; scalars and enums cost 0
  (they come with their object's row), except those that may need a query of their
  own (1): `totalCount`, `hasNextPage`, `hasPreviousPage`;
- a connection's `edges`, or a list with a `first` argument, has `first` (or `last`)
  items, a literal or a variable, capped at what its resolver returns at most (PAGED);
  when neither is given, the schema's default of `first`;
- a list with no size argument counts an estimate per item type (ESTIMATES);
- named and inline fragments are expanded, fields of one response key merged (as
  execution merges them), aliases counted apart, `@skip`/`@include` honoured; on an
  interface (`node`), the costliest of its object types counts;
- introspection (`__schema`, `__type`, `__typename`) costs 0, as the depth limit
  ignores it: its size is the schema's, not the data's.

Not a validation rule: the cost depends on the variables, which validation rules do
not see, and the rules are ValidationCache's key (schema/extensions.py), so a rule
carrying a request's variables or limit would make every validation a cache miss, and
one without them would cache a verdict the variables change. `refusal` runs
right after the (cached) validation, on the document strawberry parsed (also cached)
and the request's variables, for queries, mutations and subscriptions, over HTTP and
both WebSocket protocols alike. The cost of an operation without variables is cached by
its text (it cannot change); with variables it is walked again: about 20 µs for the
dashboard's list query, 35 µs for the costliest legitimate one (the README's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from weakref import WeakKeyDictionary

from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NamedTypeNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
)
from graphql.type.definition import GraphQLCompositeType
from strawberry.types import ExecutionContext

from domain.errors import ErrorCode
from domain.senders import MAX_SENDERS
from services import reads, recurring, webhooks
from settings import DEVELOPMENT, Settings

#: the arguments that size a page, where a field has them: the larger given counts
#: (a resolver refuses both at once, domain/paging.py)
SIZE_ARGUMENTS = ("first", "last")
#: fields sized by their `first`/`last`, with the most items their resolver returns: of
#: a connection, its `edges`; of a list, the list
PAGED: dict[tuple[str, str], int] = {
    ("Query", "campaigns"): reads.MAX_PAGE,
    ("Campaign", "messages"): reads.MAX_PAGE,
    ("WebhookEndpoint", "deliveries"): webhooks.MAX_DELIVERIES_PAGE,
    ("Query", "optOuts"): reads.MAX_PAGE,
    ("Query", "recurringSchedules"): recurring.MAX_SCHEDULES_PAGE,
    ("RecurringSchedule", "occurrences"): recurring.MAX_OCCURRENCES_PAGE,
}
#: lists with no size argument: the items one returns, by item type (each is the item
#: of one list field, but UserError, of every payload)
ESTIMATES: dict[str, int] = {
    "CampaignEvent": 10,  # a campaign's status changes: 4 or 5 to COMPLETED, 2 more per pause
    "FailureBucket": 10,  # distinct error codes among a campaign's failures
    "TimelinePoint": 120,  # a chart's points (the dashboard asks 120); reads.MAX_TIMELINE_POINTS at most
    "ApiKey": 20,  # a workspace's keys: no cap, a few per system or person
    "WebhookEndpoint": webhooks.MAX_ENDPOINTS,  # the cap
    "Sender": MAX_SENDERS,  # the cap
    "Template": 250,  # Meta allows 250 templates per WABA (without a verified business)
    "UserError": 5,  # payloads echo their input, which the body and token limits bound
    "InvalidRecipient": 10,
    "BillableCount": 5,  # Meta's pricing categories: marketing, utility, authentication, service, ...
    "WaitingGroup": 300,  # a campaign's waiting messages by reason and zone: a few hundred zones at most
    "PlannedSendHour": 200,  # a send plan's hours: a local-time day across every zone, a window's few days
}
#: scalars that may cost a query of their own (a count; an EXISTS past a cursor)
QUERYING_SCALARS = frozenset(
    {
        ("CampaignConnection", "totalCount"),
        ("MessageConnection", "totalCount"),
        ("OptOutConnection", "totalCount"),
        ("PageInfo", "hasNextPage"),
        ("PageInfo", "hasPreviousPage"),
    }
)
#: what an undeclared list counts: a full page (tests/schema/test_cost.py keeps none undeclared)
UNDECLARED = reads.MAX_PAGE


def query_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
) -> int:
    """The cost of the operation `operation_name` of a validated `document` with these
    (raw, as sent) variables; 0 when the document names no such operation."""
    operation = get_operation_ast(document, operation_name)
    root = schema.get_root_type(operation.operation) if operation is not None else None
    if operation is None or root is None:
        return 0
    return _Walk(schema, document, operation, variables).cost((operation.selection_set,), root, None)


class _Walk:
    """One operation's walk; `cost` is called once per selection set and object type."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any] | None,
    ) -> None:
        self.schema = schema
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        defaults = {
            d.variable.name.value: _literal(d.default_value, {})
            for d in operation.variable_definitions or ()
            if d.default_value is not None
        }
        given = variables if isinstance(variables, Mapping) else {}  # anything else fails coercion later
        self.variables: dict[str, Any] = {**defaults, **given}

    def cost(self, sets: Sequence[SelectionSetNode], parent: GraphQLCompositeType, page: int | None) -> int:
        """The cost of `sets` on an object of type `parent`; `page` is the size of a
        connection's `edges` when `parent` is that connection."""
        if is_abstract_type(parent):
            kinds = self.schema.get_possible_types(parent)  # type: ignore[arg-type]
            return max((self.cost(sets, kind, page) for kind in kinds), default=0)
        assert isinstance(parent, GraphQLObjectType)
        fields: dict[str, list[FieldNode]] = {}
        self._collect(sets, parent, fields, set())
        total = 0
        for nodes in fields.values():
            name = nodes[0].name.value
            field = parent.fields.get(name)
            if field is not None and not name.startswith("__"):
                total += self._field(parent, name, field, nodes, page)
        return total

    def _field(
        self, parent: GraphQLObjectType, name: str, field: GraphQLField, nodes: list[FieldNode], page: int | None
    ) -> int:
        named = get_named_type(field.type)
        if is_leaf_type(named):
            return 1 if (parent.name, name) in QUERYING_SCALARS else 0
        listed = is_list_type(get_nullable_type(field.type))  # type: ignore[arg-type]
        size, inner = 1, None
        maximum = PAGED.get((parent.name, name))
        if maximum is not None:
            if listed:
                size = self._page(maximum, field, nodes[0])
            else:
                inner = self._page(maximum, field, nodes[0])
        elif listed:
            size = page if page is not None and name == "edges" else ESTIMATES.get(named.name, UNDECLARED)
        if size == 0:
            return 0
        sets = [n.selection_set for n in nodes if n.selection_set is not None]
        return size * (1 + self.cost(sets, named, inner))  # type: ignore[arg-type]

    def _page(self, maximum: int, field: GraphQLField, node: FieldNode) -> int:
        """The items the resolver returns for this `first` or `last`: what was asked,
        capped; the schema's default of `first` when neither is given (or both null),
        which is the resolvers' too."""
        asked = [self._value(a.value) for a in node.arguments or () if a.name.value in SIZE_ARGUMENTS]
        sizes = [size for size in asked if size is not None]
        if not sizes:
            default = field.args["first"].default_value if "first" in field.args else None
            sizes = [default]
        # a size that is not an Int (or no default) counts as the most it could be: execution refuses it
        counted = [size if isinstance(size, int) and not isinstance(size, bool) else maximum for size in sizes]
        return max(0, min(max(counted), maximum))

    def _collect(
        self,
        sets: Sequence[SelectionSetNode],
        kind: GraphQLObjectType,
        fields: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        """The fields `sets` select on an object of type `kind`, by response key, as
        graphql-core's collect_fields groups them (each named fragment once)."""
        for selection_set in sets:
            for selection in selection_set.selections:
                if not self._included(selection):
                    continue
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    fields.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    if self._applies(selection.type_condition, kind):
                        self._collect((selection.selection_set,), kind, fields, visited)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if name in visited or fragment is None:
                        continue
                    visited.add(name)
                    if self._applies(fragment.type_condition, kind):
                        self._collect((fragment.selection_set,), kind, fields, visited)

    def _applies(self, condition: NamedTypeNode | None, kind: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        target = self.schema.get_type(condition.name.value)
        if target is kind:
            return True
        return is_abstract_type(target) and self.schema.is_sub_type(target, kind)  # type: ignore[arg-type]

    def _included(self, selection: SelectionNode) -> bool:
        for directive in selection.directives or ():
            name = directive.name.value
            if name in ("skip", "include"):
                value = next((self._value(a.value) for a in directive.arguments or () if a.name.value == "if"), None)
                if value is (name == "skip"):
                    return False
        return True

    def _value(self, node: ValueNode) -> Any:
        return _literal(node, self.variables)


def _literal(node: ValueNode, variables: Mapping[str, Any]) -> Any:
    """The Int, Boolean or null that `node` holds (a variable's value as sent); None
    for anything else, which no size or @skip/@include argument takes."""
    if isinstance(node, VariableNode):
        return variables.get(node.name.value)
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, BooleanValueNode):
        return node.value
    if isinstance(node, NullValueNode):
        return None
    return None


def configured_limit(context: object) -> int:
    """MAX_QUERY_COST of the app serving the operation, from its settings (as the CSV
    routes read MAX_IMPORT_BYTES), so a rule built once at import needs no rebuilding;
    the default where no app has settings (a schema served on its own, in tests)."""
    settings = getattr(context, "settings", None)  # our Context carries the app's (server.py)
    if isinstance(settings, Settings):
        return settings.max_query_cost
    request = context.get("request") if isinstance(context, dict) else getattr(context, "request", None)
    scope = getattr(request, "scope", None)
    app = scope.get("app") if isinstance(scope, Mapping) else None
    settings = getattr(getattr(app, "state", None), "settings", None)
    return settings.max_query_cost if isinstance(settings, Settings) else DEVELOPMENT.max_query_cost


def too_costly(operation: OperationDefinitionNode, cost: int, limit: int) -> GraphQLError:
    """The refusal: LIMIT_EXCEEDED, like every other limit, with the cost and the limit."""
    return GraphQLError(
        f"This {operation.operation.value} would cost {cost:,} (limit {limit:,}): "
        "ask for fewer items per page or fewer aliases.",
        operation,
        extensions={"code": ErrorCode.LIMIT_EXCEEDED.value, "cost": cost, "limit": limit},
    )


def refusal(context: ExecutionContext) -> GraphQLError | None:
    """The refusal of the operation of a validated document, when it costs more than
    MAX_QUERY_COST; None when it may run. Called by the Guard extension
    (schema/extensions.py) right after validation, before anything runs."""
    document = context.graphql_document
    operation = get_operation_ast(document, context.operation_name) if document is not None else None
    if document is None or operation is None:
        return None
    schema = context.schema._schema
    if operation.variable_definitions or context.query is None:
        cost = query_cost(schema, document, context.operation_name, context.variables)
    else:
        cost = _fixed_cost(schema, document, context.query, context.operation_name)
    limit = configured_limit(context.context)
    return too_costly(operation, cost, limit) if cost > limit else None


#: the costs of operations without variables, per schema, by document text and
#: operation name: the same text is the same document, and with no variable to read
#: its cost never changes (a dashboard sends the same few queries again and again)
_FIXED_COSTS: WeakKeyDictionary[GraphQLSchema, dict[tuple[str, str | None], int]] = WeakKeyDictionary()
_FIXED_COSTS_SIZE = 1024


def _fixed_cost(schema: GraphQLSchema, document: DocumentNode, query: str, operation_name: str | None) -> int:
    costs = _FIXED_COSTS.setdefault(schema, {})
    key = (query, operation_name)
    cost = costs.get(key)
    if cost is None:
        cost = query_cost(schema, document, operation_name)
        if len(costs) >= _FIXED_COSTS_SIZE:
            costs.clear()  # bounded: the texts of a deployment's clients fill it again at once
        costs[key] = cost
    return cost
