"""Relay cursor connections (https://relay.dev/graphql/connections.htm): the page that a
connection's arguments ask for.

`first`/`after` read forward from the start of the connection, or from just past the
`after` cursor; `last`/`before` read backward from its end, or from just before the
`before` cursor. `after` and `before` together bound a window for either. Edges always
come in the connection's own order. `first` and `last` together are refused: the spec
allows them but calls the result confusing, and a page is read from one end.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import DomainError, ValidationFailed, collect
from domain.ids import decode_cursor

#: the most edges one page holds, whatever `first` or `last` asks
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class Window:
    """A page to read: `size` rows from the start (forward) or the end (backward) of
    the rows strictly between the `after` and `before` positions (ids), when given."""

    size: int
    backward: bool
    after: int | None = None
    before: int | None = None


def window(first: int | None, after: str | None, last: int | None, before: str | None, default: int) -> Window:
    """The Window the arguments ask for (`default` rows forward when neither `first`
    nor `last` is given); every bad argument at once as a VALIDATION error naming it."""
    errors: list[DomainError] = []
    for name, size in (("first", first), ("last", last)):
        if size is not None and size < 0:
            errors.append(ValidationFailed(f"{name} must not be negative.", (name,)))
    if first is not None and last is not None:
        errors.append(ValidationFailed("Give first (forward) or last (backward), not both.", ("last",)))
    positions: dict[str, int] = {}
    for name, cursor in (("after", after), ("before", before)):
        if cursor is not None:
            try:
                positions[name] = decode_cursor(cursor, (name,))
            except ValidationFailed as error:
                errors.append(error)
    collect(errors)
    backward = last is not None
    wanted = last if last is not None else (default if first is None else first)
    return Window(min(wanted, MAX_PAGE), backward, positions.get("after"), positions.get("before"))
