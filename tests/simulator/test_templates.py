"""A WABA's message templates (simulator/templates.py): Meta's shape read and checked
field by field, the samples every simulator serves, and one WABA's book of them."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.templates import SAMPLES, Template, TemplateBook, TemplateConflict, samples, template_id

WABA = "200000000000001"


def positional(**fields: Any) -> dict[str, Any]:
    return {
        "name": "promo",
        "language": "en_US",
        "category": "MARKETING",
        "components": [{"type": "BODY", "text": "Hi {{1}}, {{2}} off today, {{1}}!"}],
    } | fields


def test_every_book_starts_with_metas_hello_world() -> None:
    book = TemplateBook(WABA)
    [hello] = list(book)
    assert (hello.name, hello.language, hello.category, hello.status) == ("hello_world", "en_US", "UTILITY", "APPROVED")
    assert hello.parameter_format == "POSITIONAL" and all(not c.variables for c in hello.components)
    assert hello.components[0].to_json() == {"type": "HEADER", "format": "TEXT", "text": "Hello World"}
    assert hello.body.text.startswith("Welcome and congratulations!!")
    assert hello.waba_id == WABA and hello.id == template_id(WABA, "hello_world", "en_US")


def test_the_samples_are_approved_positional_and_named_with_examples() -> None:
    by_key = {(t.name, t.language): t for t in samples(WABA)}
    assert set(by_key) == {("spring_sale", "en_US"), ("spring_sale", "es"), ("order_update", "en_US")}
    sale, order = by_key["spring_sale", "en_US"], by_key["order_update", "en_US"]
    assert (sale.category, sale.parameter_format, sale.body.variables) == ("MARKETING", "POSITIONAL", ("1", "2"))
    assert (order.category, order.parameter_format) == ("UTILITY", "NAMED")
    assert order.body.variables == ("first_name", "order_id")
    assert (
        sale.body.render({"1": "Ada", "2": "20%"}) == "Hi Ada, our spring sale is on: 20% off everything until Sunday."
    )
    assert order.body.to_json()["example"]["body_text_named_params"][0] == {
        "param_name": "first_name",
        "example": "Ada",
    }
    assert all(t.status == "APPROVED" for t in by_key.values()) and len(SAMPLES) == 3


def test_a_template_reads_metas_shape_and_numbers_its_positional_parameters() -> None:
    template = Template.from_json(positional(), WABA)
    assert template.body.variables == ("1", "2")  # {{1}} twice is still one parameter
    assert template.body.render({"1": "Ada", "2": "20%"}) == "Hi Ada, 20% off today, Ada!"
    assert template.to_json() == {
        "waba_id": WABA,
        "id": template.id,
        "name": "promo",
        "language": "en_US",
        "status": "APPROVED",
        "category": "MARKETING",
        "parameter_format": "POSITIONAL",
        "components": [{"type": "BODY", "text": "Hi {{1}}, {{2}} off today, {{1}}!"}],
        "quality_score": {"score": "UNKNOWN"},
        "rejected_reason": "NONE",
    }
    assert template.graph(["name", "status"]) == {"name": "promo", "status": "APPROVED", "id": template.id}


def test_a_body_shorthand_and_a_named_template_with_header_and_footer() -> None:
    short = Template.from_json({"name": "ping", "language": "en", "category": "utility", "body": "Ping"}, WABA)
    assert [c.type for c in short.components] == ["BODY"] and short.category == "UTILITY"
    named = Template.from_json(
        {
            "name": "receipt",
            "language": "pt_BR",
            "category": "UTILITY",
            "parameter_format": "named",
            "status": "pending",
            "id": "123",
            "components": [
                {"type": "header", "format": "text", "text": "Order {{order_id}}"},
                {"type": "BODY", "text": "Thanks {{first_name}}, order {{order_id}} is paid."},
                {"type": "FOOTER", "text": "Shop"},
            ],
        },
        WABA,
    )
    assert (named.id, named.status, named.parameter_format) == ("123", "PENDING", "NAMED")
    assert named.variables("header") == ("order_id",) and named.variables("body") == ("first_name", "order_id")
    assert named.variables("button") == ()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"name": "Spring Sale"}, "name"),
        ({"language": "english"}, "language"),
        ({"category": "PROMO"}, "category"),
        ({"status": "LIVE"}, "status"),
        ({"parameter_format": "BOTH"}, "parameter_format"),
        ({"id": 17}, "id"),
        ({"colour": "red"}, "'colour'"),
        ({"body": "Hi"}, "either components or body"),
        ({"components": {"type": "BODY"}}, "components must be a JSON list"),
        ({"components": [{"type": "FOOTER", "text": "x"}]}, "exactly one BODY"),
        ({"components": [{"type": "BUTTONS", "text": "x"}]}, "components[0].type"),
        ({"components": [{"type": "BODY", "text": "x", "buttons": []}]}, "'buttons'"),
        ({"components": [{"type": "BODY", "text": ""}]}, "components[0].text"),
        ({"components": [{"type": "BODY", "text": "x" * 1025}]}, "at most 1024"),
        ({"components": [{"type": "HEADER", "format": "IMAGE", "text": "x"}]}, "components[0].format"),
        ({"components": [{"type": "BODY", "text": "Hi {{2}}"}]}, "{{1}} to {{1}}"),
        ({"components": [{"type": "BODY", "text": "Hi {{name}}"}]}, "{{name}} is not a POSITIONAL parameter"),
        (
            {"parameter_format": "NAMED", "components": [{"type": "BODY", "text": "Hi {{1}}"}]},
            "{{1}} is not a NAMED parameter",
        ),
        (
            {"components": [{"type": "BODY", "text": "x"}, {"type": "FOOTER", "text": "{{1}}"}]},
            "a FOOTER takes no parameters",
        ),
        (
            {"components": [{"type": "HEADER", "text": "{{1}} {{2}}"}, {"type": "BODY", "text": "x"}]},
            "a HEADER takes at most one parameter",
        ),
    ],
)
def test_a_bad_template_is_refused_naming_its_field(change: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError) as refused:
        Template.from_json(positional(**change), WABA)
    assert named in str(refused.value)


def test_ids_are_metas_shape_and_the_same_on_every_run() -> None:
    first = template_id(WABA, "promo", "en_US")
    assert first.isdigit() and len(first) == 16
    assert first == template_id(WABA, "promo", "en_US") != template_id(WABA, "promo", "es")
    assert template_id("200000000000002", "promo", "en_US") != first


def test_a_book_adds_once_refuses_a_contradiction_and_changes_a_status() -> None:
    book = TemplateBook(WABA)
    promo = Template.from_json(positional(), WABA)
    assert book.add(promo) is True and book.add(promo) is False
    with pytest.raises(TemplateConflict):
        book.add(Template.from_json(positional(category="UTILITY"), WABA))
    rejected = book.set_status("promo", "en_US", "REJECTED", "PROMOTIONAL")
    assert rejected is not None and (rejected.status, rejected.rejected_reason) == ("REJECTED", "PROMOTIONAL")
    approved = book.set_status("promo", "en_US", "APPROVED", "NONE")
    assert approved is not None and approved.rejected_reason == "NONE" and book.get("promo", "en_US") == approved
    assert book.set_status("promo", "fr", "APPROVED") is None
    assert [t.name for t in book] == ["hello_world", "promo"] and len(book) == 2
    assert book.remove("promo", "en_US") == approved and book.get("promo", "en_US") is None
    with pytest.raises(ValueError, match="belongs to WABA"):
        book.put(Template.from_json(positional(), "999"))
