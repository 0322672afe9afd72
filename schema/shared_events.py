"""Execute a subscription event once for all subscribers who asked the same thing.

graphql-core runs a subscription's selection set for every subscriber on every event
(70-110 µs each here): 5,000 dashboards watching one campaign would cost half a second
of CPU per event. The hub hands every subscriber of a campaign the same payload object
(services/live.py), so the result of executing one document with the same variables
on it is the same for all of them: it is computed once and shared.

Only payloads that opt in (`SHARED_RESULTS` attribute, a dict) are shared: their
fields must not depend on who asks (CampaignProgress is a flat snapshot).
"""

from __future__ import annotations

import json
from typing import Any

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

SHARED_RESULTS = "_shared_results"


def share_results(payload: object) -> object:
    """Mark `payload` as the same for every subscriber (its results get shared)."""
    object.__setattr__(payload, SHARED_RESULTS, {})
    return payload


class SharedEventExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        # graphql-core 3.3 shares this memo between a subscription's per-event copies
        # and keys it on lists made fresh per event: it grew for the subscription's
        # whole life (about 2 KB per event per subscriber). Each event gets its own.
        executor._relevant_sub_fields = {}
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        cache: dict[tuple[int, str], Any] | None = getattr(self.root_value, SHARED_RESULTS, None)
        if cache is None:
            return super().execute_operation(serially)
        # The parser cache gives one AST per query text, so its identity names the query.
        key = (id(self.operation), json.dumps(self.variable_values, sort_keys=True, default=str))
        found = cache.get(key)
        if found is None:
            found = super().execute_operation(serially)
            if self.is_awaitable(found):
                return found  # not shareable as is; flat snapshots never get here
            cache[key] = found
        return found
