"""The executable schema, exported with `campaigns export-schema`."""

from __future__ import annotations

import strawberry

from schema.extensions import extensions
from schema.mutations import Mutation
from schema.queries import Query
from schema.scalars import SCALAR_OVERRIDES
from schema.subscriptions import Subscription
from schema.types import Campaign, Message, Workspace


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Campaign, Message, Workspace],
        extensions=extensions(),
        scalar_overrides=SCALAR_OVERRIDES,
    )


schema = build_schema()
