"""Domain errors as the contract's `userErrors`."""

from __future__ import annotations

import strawberry

from domain.errors import DomainError, ErrorCode, InvalidInput

UserErrorCode = strawberry.enum(ErrorCode, name="UserErrorCode")


@strawberry.type(description="An error the user can act on. field is the path to the input at fault.")
class UserError:
    field: list[str] | None
    message: str
    code: UserErrorCode  # type: ignore[valid-type]

    @classmethod
    def of(cls, error: DomainError, rename: dict[str, list[str]] | None = None) -> UserError:
        path = list(error.field) if error.field else None
        if path and rename and path[0] in rename:
            path = rename[path[0]] + path[1:]
        return cls(field=path, message=error.message, code=error.code)

    @classmethod
    def all(cls, error: DomainError, rename: dict[str, list[str]] | None = None) -> list[UserError]:
        """Every error `error` stands for: one, or each field of an InvalidInput."""
        parts = error.errors if isinstance(error, InvalidInput) else (error,)
        return [cls.of(part, rename) for part in parts]
