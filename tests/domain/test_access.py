"""domain/access.py: scopes as clients write them, the table's defaults (a mutation
not in it needs admin), and the refusal's wording."""

from __future__ import annotations

import pytest

from domain.access import ALL_SCOPES, Forbidden, Scope, check, loaded, needed, parse_scopes, stored
from domain.errors import ErrorCode, ValidationFailed


def test_scopes_parse_in_any_case_and_order_and_store_in_a_fixed_order() -> None:
    parsed = parse_scopes(["SEND", " read ", "send"])
    assert parsed == {Scope.READ, Scope.SEND}
    assert stored(parsed) == "read,send" and loaded(stored(parsed)) == parsed
    assert loaded(stored(ALL_SCOPES)) == ALL_SCOPES


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ([], ["scopes"], "A key needs at least one scope."),
        (["read", "owner"], ["scopes", "1"], "Unknown scope 'owner'; scopes are read, write, send, admin."),
    ],
)
def test_bad_scopes_are_refused_naming_the_field(values: list[str], field: list[str], message: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_scopes(values)
    assert refused.value.message == message and list(refused.value.field or ()) == field


def test_queries_need_read_unless_listed_and_unknown_mutations_need_admin() -> None:
    assert needed("query", "campaigns") is Scope.READ
    assert needed("subscription", "campaignProgress") is Scope.READ
    assert needed("query", "apiKeys") is Scope.ADMIN
    assert needed("mutation", "sendCampaignNow") is Scope.SEND
    assert needed("mutation", "pauseCampaign") is Scope.WRITE  # stopping never sends
    assert needed("mutation", "somethingNew") is Scope.ADMIN  # fail closed


def test_check_refuses_with_forbidden_and_passes_a_held_scope() -> None:
    check("createCampaign", Scope.WRITE, frozenset({Scope.WRITE}))
    with pytest.raises(Forbidden) as refused:
        check("createCampaign", Scope.WRITE, frozenset())
    assert refused.value.code is ErrorCode.FORBIDDEN and refused.value.need is Scope.WRITE
    assert refused.value.message == "This API key lacks the `write` scope that createCampaign needs (it has: none)."
