"""Errors a user can act on. The GraphQL layer turns them into `userErrors`."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class ErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    VALIDATION = "VALIDATION"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    CONFLICT = "CONFLICT"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    FORBIDDEN = "FORBIDDEN"


class DomainError(Exception):
    """A refusal with a code, a message and the input path at fault."""

    code: ErrorCode = ErrorCode.VALIDATION

    def __init__(self, message: str, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field: tuple[str, ...] | None = tuple(field) if field is not None else None

    @property
    def extensions(self) -> dict[str, object]:
        """What a GraphQL error built from this one carries besides its message."""
        return {"code": self.code.value, "field": list(self.field) if self.field else None}


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class ValidationFailed(DomainError):
    code = ErrorCode.VALIDATION


class Conflict(DomainError):
    code = ErrorCode.CONFLICT


class LimitExceeded(DomainError):
    code = ErrorCode.LIMIT_EXCEEDED


class InvalidTransition(DomainError):
    """The action is not in the lifecycle table for the campaign's current status."""

    code = ErrorCode.INVALID_TRANSITION

    def __init__(self, status: str, action: str, allowed: Sequence[str], field: Sequence[str] = ("id",)) -> None:
        allowed_text = ", ".join(allowed) if allowed else "none"
        super().__init__(
            f"Cannot {action} a campaign that is {status}; allowed actions: {allowed_text}.",
            field,
        )
        self.status = status
        self.action = action
        self.allowed = tuple(allowed)


class InvalidInput(ValidationFailed):
    """Several fields of one input are bad: a form shows all of its errors at once."""

    def __init__(self, errors: Sequence[DomainError]) -> None:
        super().__init__(" ".join(e.message for e in errors), errors[0].field)
        self.errors = tuple(errors)


def collect(errors: Sequence[DomainError]) -> None:
    """Raise what `errors` holds: nothing, the one error, or all of them."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InvalidInput(errors)
