"""The execution context of every operation: strawberry's, with a leak fixed.

graphql-core 3.3 shares a memo (`_relevant_sub_fields`) between a subscription's
per-event executors and keys it on lists made fresh per event, so it grew for the
subscription's whole life: about 2 KB per event per subscriber. Each event gets its own.
"""

from __future__ import annotations

from typing import Any

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class EventExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor
