"""The executable schema, exported with `campaigns export-schema`."""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig

from schema.extensions import extensions
from schema.mutations import Mutation
from schema.queries import Query
from schema.scalars import SCALAR_MAP
from schema.subscriptions import Subscription
from schema.types import Campaign, Message, Workspace


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Campaign, Message, Workspace],
        extensions=extensions(),
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
    )


schema = build_schema()
