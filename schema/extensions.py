"""Safety limits and error masking for the GraphQL endpoint: one extension, Guard.

It was seven (the token and validation-rule limits, strawberry's ParserCache and
ValidationCache, the operation-name check, the cost limit, the error masking), and
strawberry wraps each hook of each extension in a fresh context manager per request:
87 µs of every operation, 50 of them for the six beside the two caches. Guard does
their work in one instance, in the same order. It is passed as a factory: one fresh
instance per operation (shared instances would share per-operation state). The parse
and validation caches are strawberry's own, at module level, so they serve every
request (about 4x the request rate here).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from graphql import ASTValidationRule, DocumentNode, OperationDefinitionNode
from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors, ParserCache, SchemaExtension, ValidationCache
from strawberry.extensions.max_aliases import create_validator as alias_limit
from strawberry.extensions.query_depth_limiter import create_validator as depth_limit
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionContext

from domain.errors import DomainError
from runtime.request_ids import current_request_id
from schema import cost

log = logging.getLogger("campaigns.graphql")

MAX_DEPTH = 10
MAX_TOKENS = 5_000
MAX_ALIASES = 30
#: distinct documents whose parse and validation are kept
CACHED_DOCUMENTS = 1024
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

    def _process_result(self, result: object) -> None:
        # strawberry's tests `isinstance(result, <runtime Protocol>)`: 10 µs a request
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]


def several_operations_unnamed(context: ExecutionContext, document: DocumentNode) -> GraphQLError | None:
    """A document with several operations needs `operationName` (GraphQL spec,
    GetOperation): Strawberry would run the first one instead."""
    # what the client sent (`operation_name` falls back to the first operation's)
    if getattr(context, "_provided_operation_name", None) is not None:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) <= 1:
        return None
    return GraphQLError(
        "Must provide operationName: this document has several operations.",
        extensions={"code": "BAD_REQUEST", "field": ["operationName"]},
    )


# Built once: QueryDepthLimiter and MaxAliasesLimiter create a new rule class per
# instance, and the rules are part of the validation cache's key, so per-request
# rules would make every validation a cache miss.
_LIMIT_RULES: tuple[type[ASTValidationRule], ...] = (depth_limit(MAX_DEPTH, None), alias_limit(MAX_ALIASES))
#: strawberry's LRU caches (shared by every instance of the same size)
_parse = ParserCache(maxsize=CACHED_DOCUMENTS).cached_parse_document
_validate = ValidationCache(maxsize=CACHED_DOCUMENTS).cached_validate_document


class Guard(MaskUnexpectedErrors):
    """Every check of an operation, in one extension, in this order:

    - the token limit (MAX_TOKENS) while parsing, and the depth and alias limits among
      the validation rules (AddValidationRules, MaxTokensLimiter did this);
    - the document parsed and validated through strawberry's caches, by text;
    - a document of several operations without `operationName` refused;
    - the cost limit (schema/cost.py), with the request's variables;
    - unexpected errors masked in the answer, logged under the request id.

    Strawberry checks for errors inside the validation step, before the hooks resume,
    so the checks after validation run on entering it."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = MAX_TOKENS
        context.validation_rules = context.validation_rules + _LIMIT_RULES
        yield from super().on_operation()  # the masking, once the result is there

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.graphql_document = _parse(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            errors = _validate(context.schema._schema, document, context.validation_rules)
            if not errors:
                refused = several_operations_unnamed(context, document) or cost.refusal(context)
                # a new list: the validation cache hands every request the same one
                errors = [refused] if refused is not None else errors
            context.pre_execution_errors = errors
        yield


def extensions() -> list[type[SchemaExtension] | Callable[[], SchemaExtension]]:
    return [Guard]
