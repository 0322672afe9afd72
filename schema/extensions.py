"""Safety limits and error masking for the GraphQL endpoint.

Extensions are passed as factories: one fresh instance per operation (shared instances
would share per-operation state). ParserCache and ValidationCache keep their caches at
module level, so they still serve every request (about 4x the request rate here).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from graphql import ASTValidationRule, OperationDefinitionNode
from graphql.error import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_limit
from strawberry.extensions.query_depth_limiter import create_validator as depth_limit
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from domain.errors import DomainError
from runtime.request_ids import current_request_id
from schema.cost import QueryCostLimit

log = logging.getLogger("campaigns.graphql")

MAX_DEPTH = 10
MAX_TOKENS = 5_000
MAX_ALIASES = 30
# The cost limit is a setting (MAX_QUERY_COST), read per operation: schema/cost.py.


def is_expected(error: GraphQLError) -> bool:
    """Syntax, validation, input coercion, an operation of a kind its transport does not
    carry (a query over the legacy subscription protocol, a subscription POSTed) and
    domain errors are for the client; anything else is a bug."""
    original = error.original_error
    client = DomainError | GraphQLError | InvalidOperationTypeError | CannotGetOperationTypeError
    return original is None or isinstance(original, client)


class MaskUnexpectedErrors(MaskErrors):
    """Replace unexpected errors by a message with the request id, and log the real one
    under that id, so a user's report leads straight to the stack trace."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda e: not is_expected(e))

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        request_id = current_request_id()
        log.error(
            "unexpected error in %s",
            ".".join(str(p) for p in error.path or ()),
            exc_info=error.original_error,
            extra={"request_id": request_id},
        )
        masked = super().anonymise_error(error)
        masked.message = f"Unexpected error (request id {request_id})."
        masked.extensions = {"code": "INTERNAL", "requestId": request_id}
        return masked


class OperationNameRequired(SchemaExtension):
    """A document with several operations needs `operationName` (GraphQL spec,
    GetOperation): Strawberry would run the first one instead. Set inside the
    validation step, as the cost limit is (schema/cost.py), after ValidationCache."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # what the client sent (`operation_name` falls back to the first operation's)
        provided = getattr(context, "_provided_operation_name", None)
        if document is not None and provided is None and not context.pre_execution_errors:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                context.pre_execution_errors = [
                    GraphQLError(
                        "Must provide operationName: this document has several operations.",
                        extensions={"code": "BAD_REQUEST", "field": ["operationName"]},
                    )
                ]
        yield


# Built once: QueryDepthLimiter and MaxAliasesLimiter create a new rule class per
# instance, and the rules are part of ValidationCache's key, so per-request instances
# would make every validation a cache miss.
_LIMIT_RULES: list[type[ASTValidationRule]] = [depth_limit(MAX_DEPTH, None), alias_limit(MAX_ALIASES)]


def extensions() -> list[type[SchemaExtension] | Callable[[], SchemaExtension]]:
    return [
        lambda: AddValidationRules(_LIMIT_RULES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: ParserCache(maxsize=1024),
        lambda: ValidationCache(maxsize=1024),
        OperationNameRequired,
        QueryCostLimit,  # after validation, with the variables (cached without them: schema/cost.py)
        MaskUnexpectedErrors,
    ]
