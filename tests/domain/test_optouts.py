"""domain/optouts.py: where opt-outs come from, what makes an inbound message a stop
keyword, and how keywords, searches and details are checked. Pure: no I/O."""

from __future__ import annotations

import pytest

from domain.errors import InvalidInput, ValidationFailed
from domain.optouts import (
    DEFAULT_STOP_KEYWORDS,
    LIFTED_BY_RESUME,
    MAX_DETAIL,
    MAX_STOP_KEYWORDS,
    OptOutSource,
    clean_detail,
    keyword_form,
    parse_stop_keywords,
    search_form,
    stop_keyword,
)


def test_the_sources_are_the_contracts_in_its_order() -> None:
    # docs/contract.graphql: enum OptOutSource { MANUAL ERROR_131050 USER_PREFERENCES KEYWORD }
    assert [s.value for s in OptOutSource] == ["MANUAL", "ERROR_131050", "USER_PREFERENCES", "KEYWORD"]


def test_a_resume_lifts_only_what_metas_own_signals_made() -> None:
    assert LIFTED_BY_RESUME == {OptOutSource.USER_PREFERENCES, OptOutSource.ERROR_131050}


def test_the_default_keywords_are_the_issues() -> None:
    assert DEFAULT_STOP_KEYWORDS == ("STOP", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "OPTOUT", "STOPALL", "REVOKE")


@pytest.mark.parametrize("body", ["STOP", "stop", " Stop \n", "\tsToP", "ＳＴＯＰ", "unsubscribe", "OptOut"])
def test_a_whole_message_that_is_a_keyword_is_one(body: str) -> None:
    assert stop_keyword(body, DEFAULT_STOP_KEYWORDS) in DEFAULT_STOP_KEYWORDS


@pytest.mark.parametrize("body", ["please stop", "STOP!", "stopp", "don't stop me now", "", None, "S T O P"])
def test_a_message_that_only_contains_a_keyword_is_not_one(body: str | None) -> None:
    assert stop_keyword(body, DEFAULT_STOP_KEYWORDS) is None


def test_the_keyword_is_named_as_the_workspace_wrote_it() -> None:
    assert stop_keyword("  no more  ", ("Arrêt", "No   more")) == "No   more"
    assert stop_keyword("ARRÊT", ("Arrêt",)) == "Arrêt"
    assert keyword_form("  No \t more ") == "no more"


def test_keywords_are_trimmed_and_deduplicated_first_one_kept() -> None:
    assert parse_stop_keywords([" Stop ", "HALT", "stop", "no   more"]) == ("Stop", "HALT", "no more")


def test_every_bad_keyword_is_named_by_its_index_at_once() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_stop_keywords(["STOP", "  ", "x" * 41, "bad\x07bell"])
    assert [e.field for e in caught.value.errors] == [("keywords", "1"), ("keywords", "2"), ("keywords", "3")]
    assert "empty" in caught.value.errors[0].message
    assert "40 characters" in caught.value.errors[1].message
    assert "control" in caught.value.errors[2].message


def test_no_keyword_at_all_is_refused_naming_the_defaults() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_stop_keywords([])
    assert caught.value.field == ("keywords",) and "STOP" in caught.value.message


def test_too_many_keywords_are_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_stop_keywords([f"K{i}" for i in range(MAX_STOP_KEYWORDS + 1)])
    assert caught.value.field == ("keywords",)


def test_a_search_keeps_the_digits_and_plus_of_what_was_typed() -> None:
    assert search_form(" +44 7911-12 ") == "+44791112"
    assert search_form("(415) 555") == "415555"
    assert search_form("abc") is None and search_form(None) is None and search_form("  ") is None


def test_a_detail_is_one_line_and_bounded() -> None:
    assert clean_detail("replied\n\t STOP\x00") == "replied STOP"
    assert clean_detail("x" * (MAX_DETAIL + 10)) == "x" * MAX_DETAIL
    assert clean_detail(None) is None and clean_detail(" \n ") is None
