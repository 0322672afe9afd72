"""The executable schema, exported with `campaigns export-schema`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from schema.enums import index_enum_outputs
from schema.execution import EventExecutionContext
from schema.extensions import extensions
from schema.keys import KeyMutations, KeyQueries
from schema.mutations import Mutation
from schema.optouts import OptOutMutations, OptOutQueries
from schema.queries import Query
from schema.recurring import RecurringMutations, RecurringQueries
from schema.scalars import SCALAR_MAP
from schema.senders import SenderMutations, SenderQueries
from schema.subscriptions import Subscription
from schema.templates import TemplateMutations, TemplateQueries
from schema.types import Campaign, Message, Workspace
from schema.webhooks import WebhookMutations, WebhookQueries


class Schema(strawberry.Schema):
    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """One result per request: subscriptions go over WebSockets (schema.subscribe),
        so a subscription sent here is refused as such instead of run as a query."""
        allowed = set(allowed_operation_types or (OperationType.QUERY, OperationType.MUTATION))
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed - {OperationType.SUBSCRIPTION},
            operation_extensions,
        )

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Client errors are answers, not incidents: log nothing here. Unexpected errors
        are logged once, with the request id, by MaskUnexpectedErrors."""


def build_schema() -> strawberry.Schema:
    return Schema(
        query=merge_types(
            "Query",
            (Query, KeyQueries, WebhookQueries, SenderQueries, TemplateQueries, OptOutQueries, RecurringQueries),
        ),
        mutation=merge_types(
            "Mutation",
            (
                Mutation,
                KeyMutations,
                WebhookMutations,
                SenderMutations,
                TemplateMutations,
                OptOutMutations,
                RecurringMutations,
            ),
        ),
        subscription=Subscription,
        types=[Campaign, Message, Workspace],
        extensions=extensions(),
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        execution_context_class=EventExecutionContext,
    )


schema = index_enum_outputs(build_schema())
