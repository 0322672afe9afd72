"""API keys as a resource of the workspace: list, create (the secret shown once),
revoke. Revoking is immediate in this process and within auth.REVOCATION_S in every
other one; the last key that can administer a workspace cannot be revoked unless the
caller says so (only the CLI does)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.access import Scope, loaded, parse_scopes
from domain.errors import Conflict, NotFound, ValidationFailed, collect
from models import ApiKey
from services import db
from services.auth import Principal, forget, new_key

NAME_MAX = 200


@dataclass(frozen=True, slots=True)
class KeyView:
    id: int
    name: str
    prefix: str
    scopes: frozenset[Scope]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyView:
        return cls(row.id, row.name, row.prefix, loaded(row.scopes), row.created_at, row.last_used_at, row.revoked_at)


async def list_keys(workspace_id: int) -> list[KeyView]:
    """The workspace's keys, newest first, revoked ones included."""
    rows = await ApiKey.filter(workspace_id=workspace_id).order_by("-id")
    return [KeyView.of(r) for r in rows]


async def get_key(workspace_id: int, key_id: int) -> KeyView | None:
    row = await ApiKey.get_or_none(id=key_id, workspace_id=workspace_id)
    return KeyView.of(row) if row else None


def _name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationFailed("A key needs a name.", ("name",))
    if len(name) > NAME_MAX:
        raise ValidationFailed(f"name is at most {NAME_MAX} characters.", ("name",))
    return name


async def create_key(principal: Principal, name: str, scopes: Iterable[str]) -> tuple[KeyView, str]:
    """A new key of the caller's workspace: (its view, its secret). Every input is
    checked before anything is written, and every bad one is reported."""
    errors: list[ValidationFailed] = []
    try:
        clean = _name(name)
    except ValidationFailed as error:
        errors.append(error)
    try:
        wanted = parse_scopes(scopes)
    except ValidationFailed as error:
        errors.append(error)
    collect(errors)
    secret, row = await new_key(principal.workspace_id, clean, wanted)
    return KeyView.of(row), secret


async def revoke_key(workspace_id: int, key_id: int, *, allow_last_admin: bool = False) -> KeyView:
    """Revoke a key of the workspace (revoking a revoked key changes nothing). Refused
    with CONFLICT when it is the workspace's last live admin key, unless allowed."""
    async with db.in_transaction() as conn:
        # Lock the live admin keys: two revocations racing for the last two admin keys
        # are serialized here, and the second one sees that only one is left.
        lock = " FOR UPDATE" if db.is_postgres(conn) else ""
        admins = await db.fetch_rows(
            conn,
            f"SELECT id FROM api_key WHERE workspace_id = ? AND revoked_at IS NULL AND scopes LIKE ?{lock}",
            [workspace_id, f"%{Scope.ADMIN.value}%"],
        )
        row = await ApiKey.filter(id=key_id, workspace_id=workspace_id).using_db(conn).first()
        if row is None:
            raise NotFound("No such API key.", ("id",))
        if row.revoked_at is None:
            if not allow_last_admin and [int(a["id"]) for a in admins] == [key_id]:
                raise Conflict(
                    "This is the workspace's last key with the admin scope: create another admin key first.",
                    ("id",),
                )
            row.revoked_at = datetime.now(UTC)
            await ApiKey.filter(id=key_id, revoked_at__isnull=True).using_db(conn).update(revoked_at=row.revoked_at)
    forget(key_id)
    return KeyView.of(row)
