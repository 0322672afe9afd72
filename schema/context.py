"""Per-request context: the authenticated principal and the lifecycle hook."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.errors import DomainError, ErrorCode
from services.auth import Principal
from services.transitions import AfterTransition


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

    def require(self) -> Principal:
        """The principal; HTTP requests without one never reach a resolver (401)."""
        if self.principal is None:
            raise Unauthenticated("Authentication required.")
        return self.principal
