"""Message bodies: `{{name}}` placeholders filled from each recipient's variables."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def placeholders(body: str) -> tuple[str, ...]:
    """The distinct placeholder names of `body`, in order of first appearance."""
    return tuple(dict.fromkeys(PLACEHOLDER.findall(body)))


def missing_variables(names: tuple[str, ...], variables: Mapping[str, object]) -> tuple[str, ...]:
    """Names a recipient lacks. A null or empty value counts as missing: it would render
    as a gap in the message the customer receives."""
    return tuple(n for n in names if variables.get(n) in (None, ""))


def render(body: str, variables: Mapping[str, object]) -> str:
    """Fill `body`; callers check `missing_variables` first (the DRAFT exit guard does)."""
    return PLACEHOLDER.sub(lambda m: str(variables.get(m.group(1), "")), body)


def length_parts(body: str) -> tuple[int, dict[str, int]]:
    """A rendered body is `fixed + sum(count[name] * len(value))` characters long: the
    body's length without its placeholders, and how often each name appears."""
    return len(PLACEHOLDER.sub("", body)), dict(Counter(PLACEHOLDER.findall(body)))
