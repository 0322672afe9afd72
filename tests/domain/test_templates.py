"""domain/templates.py: which `{{name}}` placeholders a body uses, which of them a
recipient lacks, and how a body is filled. Pure: no I/O."""

from __future__ import annotations

import pytest

from domain.templates import missing_variables, placeholders, render


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("No variables at all.", ()),
        ("Hi {{name}}, {{ code }} is yours, {{name}}.", ("name", "code")),  # distinct, first-seen order
        ("{{b}}{{a}}{{b}}", ("b", "a")),
        ("{{ first_name_2 }} {{CITY}}", ("first_name_2", "CITY")),
        ("{{first-name}} {{}} {name} {{ na me }}", ()),  # not placeholders
    ],
)
def test_placeholders_are_the_distinct_names_in_order(body: str, names: tuple[str, ...]) -> None:
    assert placeholders(body) == names


def test_a_null_or_empty_variable_counts_as_missing_but_zero_and_false_do_not() -> None:
    variables = {"a": None, "b": "", "c": 0, "d": False, "e": "x"}
    assert missing_variables(("a", "b", "c", "d", "e", "f"), variables) == ("a", "b", "f")
    assert missing_variables((), {}) == ()


def test_render_fills_every_occurrence_whatever_its_spacing() -> None:
    assert render("Hi {{name}}, {{ name }}! {{code}} off", {"name": "Zoë", "code": 20}) == "Hi Zoë, Zoë! 20 off"


def test_render_leaves_text_that_is_not_a_placeholder_alone() -> None:
    body = "Use {code} or {{ bad-name }} at 50% off"
    assert render(body, {"code": "X", "bad-name": "Y"}) == body


def test_render_does_not_expand_placeholders_inside_values() -> None:
    assert render("{{a}} {{b}}", {"a": "{{b}}", "b": "B"}) == "{{b}} B"


def test_render_leaves_a_gap_for_an_absent_variable() -> None:
    assert render("Hi {{name}}!", {}) == "Hi !"


def test_length_parts_give_the_rendered_length_of_any_values() -> None:
    from domain.templates import length_parts

    body = "Hi {{name}}, {{ name }} owes {{amount}}."
    fixed, counts = length_parts(body)
    assert counts == {"name": 2, "amount": 1}
    values = {"name": "Zoë", "amount": "12.50"}
    assert len(render(body, values)) == fixed + sum(n * len(values[k]) for k, n in counts.items())
