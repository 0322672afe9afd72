"""API keys in GraphQL: the `apiKeys` query, `createApiKey` and `revokeApiKey`. All
three need the `admin` scope (domain/access.py)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.access import Scope
from domain.errors import DomainError
from domain.ids import expect_id, to_global_id
from schema.context import Context
from schema.errors import UserError
from schema.types import Node
from services import keys as key_service

Info = strawberry.Info[Context, None]

ApiKeyScope = strawberry.enum(Scope, name="ApiKeyScope", description="What a key may do; see the README's table.")


@strawberry.type(description="A key of the workspace. The secret itself is shown once, by createApiKey.")
class ApiKey(Node):
    name: str
    prefix: str = strawberry.field(description="The secret's first characters, to recognise it.")
    scopes: list[ApiKeyScope]  # type: ignore[valid-type]
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(description="Updated at most once a minute.")
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: key_service.KeyView) -> ApiKey:
        return cls(
            id=strawberry.ID(to_global_id("ApiKey", key.id)),
            name=key.name,
            prefix=key.prefix,
            scopes=[s for s in Scope if s in key.scopes],
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


@strawberry.type
class CreateApiKeyPayload:
    api_key: ApiKey | None
    secret: str | None = strawberry.field(description="The key itself: shown this once, never stored.")
    user_errors: list[UserError]


@strawberry.type
class RevokeApiKeyPayload:
    api_key: ApiKey | None
    user_errors: list[UserError]


@strawberry.type
class KeyQueries:
    @strawberry.field(description="The workspace's API keys, newest first, revoked ones included (admin).")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        principal = info.context.require(info)
        return [ApiKey.of(k) for k in await key_service.list_keys(principal.workspace_id)]


@strawberry.type
class KeyMutations:
    @strawberry.mutation(description="A new API key with these scopes (admin); its secret is in the payload once.")
    async def create_api_key(
        self,
        info: Info,
        name: str,
        scopes: list[ApiKeyScope],  # type: ignore[valid-type]
    ) -> CreateApiKeyPayload:
        try:
            principal = info.context.require(info)
            view, secret = await key_service.create_key(principal, name, [str(s) for s in scopes])
        except DomainError as error:
            return CreateApiKeyPayload(api_key=None, secret=None, user_errors=UserError.all(error))
        return CreateApiKeyPayload(api_key=ApiKey.of(view), secret=secret, user_errors=[])

    @strawberry.mutation(
        description=(
            "Revokes a key (admin): refused in every API process within a second, its open WebSockets "
            "closed (4403). The workspace's last admin key cannot be revoked here."
        )
    )
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> RevokeApiKeyPayload:
        try:
            principal = info.context.require(info)
            view = await key_service.revoke_key(principal.workspace_id, expect_id(id, "ApiKey"))
        except DomainError as error:
            return RevokeApiKeyPayload(api_key=None, user_errors=UserError.all(error))
        return RevokeApiKeyPayload(api_key=ApiKey.of(view), user_errors=[])
