"""The execution context of every operation: strawberry's, with a leak fixed and two
fast paths for the values most answers are made of.

graphql-core 3.3 shares a memo (`_relevant_sub_fields`) between a subscription's
per-event executors and keys it on lists made fresh per event, so it grew for the
subscription's whole life: about 2 KB per event per subscriber. Each event gets its own.

Fast paths. graphql-core completes every value through the same general steps: a
resolve info (16 fields) per field, then `complete_value` testing for an error, non-null,
null, list, leaf, abstract and object type in turn, and per list item a path entry and
the same steps again. A campaigns page of 20 is about 270 such completions, 140 of them
the items of `allowedActions`, and they were a third of its time. Two kinds take a
shorter way here:

- a field strawberry resolves by attribute (no resolver, no field extension: its
  resolver is marked `_is_default`) without arguments, of a scalar or enum type: the
  attribute, coerced;
- a list (or tuple) of scalars or enums: its items coerced in one loop.

Anything else, or anything unusual on the way (an awaitable, an exception, a null
where the type is non-null, a value the type refuses, a resolver middleware of an
extension, `@stream`), goes the general way from the start, which resolves and coerces
again (an attribute read and a coercion are pure) and so answers, errors included,
exactly as before (tests/schema/test_execution.py).
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

#: a field's fast-path verdict, kept on its definition: (leaf type, non-null), or None
_VERDICT = "_campaigns_plain_leaf"


def _plain_leaf(field: GraphQLField) -> tuple[GraphQLLeafType, bool] | None:
    """(its leaf type, whether non-null) when `field` takes the attribute fast path."""
    verdict: tuple[GraphQLLeafType, bool] | bool | None = field.__dict__.get(_VERDICT, False)
    if verdict is False:
        verdict = None
        if getattr(field.resolve, "_is_default", False) and not field.args:
            leaf, non_null = _leaf(field.type)
            if leaf is not None:
                verdict = (leaf, non_null)
        field.__dict__[_VERDICT] = verdict
    return verdict  # type: ignore[return-value]


def _leaf(kind: GraphQLOutputType) -> tuple[GraphQLLeafType | None, bool]:
    non_null = isinstance(kind, GraphQLNonNull)
    inner = kind.of_type if isinstance(kind, GraphQLNonNull) else kind
    return (inner, non_null) if is_leaf_type(inner) else (None, non_null)


class EventExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        middleware = self.middleware_manager
        # an extension's `resolve` hook wraps every resolver: then every field goes the general way
        self._fast = not (middleware is not None and middleware.middlewares)

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        field = parent_type.fields.get(node.name.value) if self._fast and not node.arguments else None
        plain = _plain_leaf(field) if field is not None else None
        if plain is not None:
            assert field is not None and field.resolve is not None
            leaf, non_null = plain
            try:
                value = field.resolve(source, None)  # strawberry's attribute read: no info used
                if value is None or value is Undefined:
                    if not non_null:
                        return None
                elif not isinstance(value, Exception) and not self.is_awaitable(value):
                    coerced = leaf.coerce_output_value(value)
                    if coerced is not None and coerced is not Undefined:
                        return coerced
            except Exception:  # the general way raises it again, located
                pass
        return super().execute_field(parent_type, source, field_details_list, path, position_context)

    def complete_iterable_value(
        self,
        item_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo,
        path: Path,
        items: Any,
        position_context: Any,
    ) -> Any:
        leaf, non_null = _leaf(item_type)
        if (
            leaf is not None
            and type(items) in (list, tuple)
            and self.get_stream_usage(field_details_list, path) is None
        ):
            coerce = leaf.coerce_output_value
            is_awaitable = self.is_awaitable
            completed: list[Any] = []
            try:
                for item in items:
                    if item is None or item is Undefined:
                        if non_null:
                            break
                        completed.append(None)
                        continue
                    if isinstance(item, Exception) or is_awaitable(item):
                        break
                    coerced = coerce(item)
                    if coerced is None or coerced is Undefined:
                        break
                    completed.append(coerced)
                else:
                    return completed
            except Exception:  # the general way raises it again, located
                pass
        return super().complete_iterable_value(item_type, field_details_list, info, path, items, position_context)
