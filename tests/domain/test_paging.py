"""domain/paging.py: the Window a connection's first/after/last/before ask for, and the
VALIDATION errors naming the argument at fault, all at once."""

from __future__ import annotations

import pytest

from domain.errors import InvalidInput, ValidationFailed
from domain.ids import encode_cursor
from domain.paging import MAX_PAGE, Window, window


def test_neither_first_nor_last_reads_the_default_forward() -> None:
    assert window(None, None, None, None, 20) == Window(20, backward=False)


def test_first_and_after_read_forward_past_the_cursor() -> None:
    assert window(5, encode_cursor(42), None, None, 20) == Window(5, backward=False, after=42)


def test_last_and_before_read_backward_from_the_cursor() -> None:
    assert window(None, None, 5, encode_cursor(42), 20) == Window(5, backward=True, before=42)


def test_after_and_before_bound_a_window_either_way() -> None:
    after, before = encode_cursor(10), encode_cursor(90)
    assert window(3, after, None, before, 20) == Window(3, backward=False, after=10, before=90)
    assert window(None, after, 3, before, 20) == Window(3, backward=True, after=10, before=90)


@pytest.mark.parametrize(("first", "last"), [(MAX_PAGE + 1, None), (None, 10_000)])
def test_a_page_is_capped(first: int | None, last: int | None) -> None:
    assert window(first, None, last, None, 20).size == MAX_PAGE


def test_zero_is_a_page_of_nothing() -> None:
    assert window(0, None, None, None, 20).size == 0
    assert window(None, None, 0, None, 20) == Window(0, backward=True)


@pytest.mark.parametrize("name", ["first", "last"])
def test_a_negative_size_names_its_argument(name: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        window(**{"first": None, "last": None, name: -1}, after=None, before=None, default=20)
    assert refused.value.field == (name,)
    assert refused.value.message == f"{name} must not be negative."


def test_first_and_last_together_are_refused_on_last() -> None:
    with pytest.raises(ValidationFailed) as refused:
        window(5, None, 5, None, 20)
    assert refused.value.field == ("last",)
    assert "not both" in refused.value.message


@pytest.mark.parametrize("name", ["after", "before"])
def test_a_malformed_cursor_names_its_argument(name: str) -> None:
    cursors = {"after": None, "before": None, name: "garbage"}
    with pytest.raises(ValidationFailed) as refused:
        window(None, cursors["after"], None, cursors["before"], 20)
    assert refused.value.field == (name,)
    assert refused.value.message == "Malformed cursor 'garbage'."


def test_every_bad_argument_is_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as refused:
        window(-1, "x", -2, "y", 20)
    fields = [e.field for e in refused.value.errors]
    assert fields == [("first",), ("last",), ("last",), ("after",), ("before",)]
