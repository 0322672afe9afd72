"""Per-request context: the authenticated principal and the lifecycle hook."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.access import Scope, check, needed
from domain.errors import DomainError, ErrorCode
from services.auth import Principal
from services.senders import NumberChecker
from services.tokens import TokenBox
from services.transitions import AfterTransition
from settings import Settings


class Unauthenticated(DomainError):
    code = ErrorCode.NOT_FOUND


@dataclass
class Context:
    request: Any
    response: Any
    principal: Principal | None
    after_transition: AfterTransition | None = None
    #: the WebSocket `connection_init` payload (strawberry sets it)
    connection_params: dict[str, Any] | None = None
    settings: Settings | None = None

    def senders(self) -> tuple[TokenBox, NumberChecker]:
        """What sender mutations need: the token box and the Cloud API client that
        checks a number (the app's, server.py)."""
        state = self.request.app.state
        return state.token_box, state.provider

    @property
    def allow_private_webhooks(self) -> bool:
        """Webhook URLs may point at private addresses (tests, `campaigns dev`)."""
        return self.settings is not None and self.settings.webhook_allow_private_urls

    def require(self, info: Any = None) -> Principal:
        """The principal, if its key may run the root field `info` resolves (its scope
        in domain/access.py; without `info`, reading); raises Forbidden else. Fields
        below a root field were allowed with it. HTTP requests without a principal
        never reach a resolver (401)."""
        if self.principal is None:
            raise Unauthenticated("Authentication required.")
        if info is None:
            check("reading", Scope.READ, self.principal.scopes)
        elif info.path.prev is None:  # a root field; below one, the root was checked
            field = info.field_name
            check(field, needed(info.operation.operation.value, field), self.principal.scopes)
        return self.principal
