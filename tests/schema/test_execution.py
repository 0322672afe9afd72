"""schema/execution.py: the fast paths for attribute leaves and lists of leaves answer,
errors included, exactly as strawberry's own execution does."""

from __future__ import annotations

import asyncio
import dataclasses
from enum import Enum
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.app import schema as served
from schema.execution import EventExecutionContext, _plain_leaf


class Colour(Enum):
    RED = "red"
    BLUE = "blue"


ColourType = strawberry.enum(Colour)


@strawberry.type
class Thing:
    name: str
    count: int
    maybe: str | None
    colour: ColourType  # type: ignore[valid-type]
    colours: list[ColourType]  # type: ignore[valid-type]
    optional_colours: list[ColourType | None]  # type: ignore[valid-type]
    numbers: list[int] | None

    @strawberry.field
    def shout(self, times: int = 1) -> str:
        return self.name.upper() * times


#: one odd value per thing, each answered (or refused) as strawberry does
ODD: list[tuple[str, Any]] = [
    ("name", None),  # null for a non-null field
    ("count", "many"),  # refused by Int
    ("maybe", ValueError("kept as a value")),  # an Exception value is raised
    ("colour", "green"),  # refused by the enum
    ("colours", (Colour.BLUE, None)),  # a tuple, with a null item
    ("optional_colours", [Colour.RED, "green"]),  # an item the enum refuses
    ("numbers", range(1, 3)),  # not a list or tuple: the general way
]


def things() -> list[Thing | None]:
    good = Thing(
        name="a",
        count=1,
        maybe=None,
        colour=Colour.RED,
        colours=[Colour.RED, Colour.BLUE],
        optional_colours=[None, Colour.BLUE],  # type: ignore[list-item]  # strawberry's enum type
        numbers=None,
    )
    return [good, *(dataclasses.replace(good, **{field: value}) for field, value in ODD)]


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing | None]:
        return things()

    @strawberry.field
    async def later(self) -> list[Thing | None]:
        return things()

    @strawberry.field
    def tags(self) -> list[str]:
        return ["x", "y"]


class Upper(SchemaExtension):
    """An extension with a `resolve` hook: it wraps every resolver, leaves included."""

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        value = _next(root, info, *args, **kwargs)
        return value.upper() if isinstance(value, str) else value


FIELDS = "name count maybe colour colours optionalColours numbers shout(times: 2) __typename"
QUERIES = [
    f"{{ things {{ {FIELDS} }} tags }}",
    f"{{ later {{ {FIELDS} }} }}",
    "{ things { a: name b: name count } }",
]


def answers(context_class: type, extensions: list[Any], query: str) -> tuple[Any, list[Any]]:
    built = strawberry.Schema(query=Query, execution_context_class=context_class, extensions=extensions)
    result = asyncio.run(built.execute(query))
    return result.data, sorted((e.formatted for e in result.errors or ()), key=repr)


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("extensions", [[], [Upper]], ids=["plain", "with-resolve-hook"])
def test_the_answer_and_its_errors_are_strawberrys(query: str, extensions: list[Any]) -> None:
    expected = answers(StrawberryGraphQLCoreExecutionContext, extensions, query)
    assert answers(EventExecutionContext, extensions, query) == expected
    assert expected[1], "the odd things' fields are refused"  # the cases below are exercised


def test_the_odd_values_fail_as_strawberry_says() -> None:
    data, errors = answers(EventExecutionContext, [], QUERIES[0])
    good, *odd = data["things"]
    assert good["colours"] == ["RED", "BLUE"] and good["optionalColours"] == [None, "BLUE"] and good["maybe"] is None
    assert good["numbers"] is None and good["shout"] == "AA"
    assert odd[2]["maybe"] is None and odd[5]["optionalColours"] == ["RED", None] and odd[6]["numbers"] == [1, 2]
    assert [i for i, thing in enumerate(odd) if thing is None] == [0, 1, 3, 4]  # a non-null field failed
    assert {tuple(e["path"]) for e in errors} == {
        ("things", 1, "name"),
        ("things", 2, "count"),
        ("things", 3, "maybe"),
        ("things", 4, "colour"),
        ("things", 5, "colours", 1),
        ("things", 6, "optionalColours", 1),
    }


def test_the_served_schemas_plain_fields_take_the_fast_path() -> None:
    campaign = served._schema.type_map["Campaign"]
    assert _plain_leaf(campaign.fields["name"]) is not None  # type: ignore[attr-defined]
    assert _plain_leaf(campaign.fields["status"]) is not None  # type: ignore[attr-defined]
    assert _plain_leaf(campaign.fields["messages"]) is None  # type: ignore[attr-defined]  # a resolver with arguments
