"""services/optouts.py on the real database: the one place opt-outs are learned and
lifted, the API's add/remove/list, and the stop keywords."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import LimitExceeded, NotFound, ValidationFailed
from domain.optouts import DEFAULT_STOP_KEYWORDS, MAX_OPT_OUTS_PER_CALL, OptOutSource
from domain.paging import window
from models import OptOut
from services import db, optouts
from services.optouts import Entry
from tests.conftest import Api, phone

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)


async def learn(api: Api, *entries: Entry) -> int:
    async with db.in_transaction() as conn:
        return await optouts.learn(conn, api.principal.workspace_id, list(entries))


async def listed(api: Api) -> list[tuple[str, str]]:
    rows = await OptOut.filter(workspace_id=api.principal.workspace_id).order_by("id").values_list("phone", "source")
    return [(p, str(s)) for p, s in rows]


async def test_an_opt_out_is_kept_as_first_learned(api: Api, other_api: Api) -> None:
    first = Entry(phone(1), OptOutSource.KEYWORD, 'replied "STOP"', NOW)
    assert await learn(api, first, Entry(phone(2), OptOutSource.USER_PREFERENCES, None, NOW)) == 2
    # learned again from another source, later: neither when nor how changes
    assert await learn(api, Entry(phone(1), OptOutSource.ERROR_131050, "x", NOW + timedelta(days=1))) == 0
    row = await OptOut.get(workspace_id=api.principal.workspace_id, phone=phone(1))
    assert (row.source, row.detail, row.created_at) == (OptOutSource.KEYWORD, 'replied "STOP"', NOW)
    assert await listed(other_api) == []  # per workspace


async def test_a_lift_honours_the_sources_and_the_time(api: Api) -> None:
    await learn(
        api, Entry(phone(3), OptOutSource.USER_PREFERENCES, None, NOW), Entry(phone(4), OptOutSource.KEYWORD, None, NOW)
    )
    ws = api.principal.workspace_id
    async with db.in_transaction() as conn:
        # a resume older than the stop lifts nothing; a keyword opt-out is not Meta's to lift
        assert (
            await optouts.lift(
                conn, ws, phone(3), frozenset({OptOutSource.USER_PREFERENCES}), NOW - timedelta(seconds=1)
            )
            == 0
        )
        assert await optouts.lift(conn, ws, phone(4), frozenset({OptOutSource.USER_PREFERENCES}), NOW) == 0
        assert await optouts.lift(conn, ws, phone(3), frozenset({OptOutSource.USER_PREFERENCES}), NOW) == 1
    assert await listed(api) == [(phone(4), "KEYWORD")]


async def test_add_reports_invalid_phones_by_index_and_adds_the_rest(api: Api) -> None:
    report = await optouts.add_opt_outs(api.principal, [phone(5), "12345", "+1 415 200 0006", phone(5), 42, phone(7)])
    assert (report.added, report.already, report.invalid_count) == (3, 1, 2)
    assert [(i, p) for i, p, _ in report.invalid] == [(1, "12345"), (4, "42")]
    assert "international format" in report.invalid[0][2] and "string" in report.invalid[1][2]
    assert await listed(api) == [(phone(5), "MANUAL"), (phone(6), "MANUAL"), (phone(7), "MANUAL")]
    detail = await OptOut.get(workspace_id=api.principal.workspace_id, phone=phone(6)).values_list("detail", flat=True)
    assert detail == "added by tester"
    again = await optouts.add_opt_outs(api.principal, [phone(7)])
    assert (again.added, again.already) == (0, 1)


async def test_too_many_phones_are_refused_and_nothing_added(api: Api) -> None:
    with pytest.raises(LimitExceeded) as caught:
        await optouts.add_opt_outs(api.principal, [phone(i) for i in range(MAX_OPT_OUTS_PER_CALL + 1)])
    assert caught.value.field == ("phones",) and await listed(api) == []


async def test_remove_names_the_phone_when_it_is_bad_or_not_listed(api: Api) -> None:
    await optouts.add_opt_outs(api.principal, [phone(8)])
    with pytest.raises(ValidationFailed) as bad:
        await optouts.remove_opt_out(api.principal, "nope")
    assert bad.value.field == ("phone",)
    with pytest.raises(NotFound) as missing:
        await optouts.remove_opt_out(api.principal, phone(9))
    assert missing.value.field == ("phone",)
    removed = await optouts.remove_opt_out(api.principal, "+1 (415) 200-0008")  # any form of the number
    assert (removed.phone, removed.source) == (phone(8), OptOutSource.MANUAL)
    assert await listed(api) == []


async def test_the_list_pages_newest_first_and_filters(api: Api) -> None:
    await learn(
        api,
        *(Entry(phone(20 + i), OptOutSource.KEYWORD if i % 2 else OptOutSource.MANUAL, None, NOW) for i in range(5)),
    )
    page = await optouts.list_opt_outs(api.principal, window(2, None, None, None, 50), None, None)
    assert [r.phone for r in page.rows] == [phone(24), phone(23)] and await page.total_count() == 5
    assert await page.has_next_page() is True and await page.has_previous_page() is False
    keyword = await optouts.list_opt_outs(api.principal, window(None, None, None, None, 50), None, OptOutSource.KEYWORD)
    assert [r.phone for r in keyword.rows] == [phone(23), phone(21)]
    found = await optouts.list_opt_outs(api.principal, window(None, None, None, None, 50), "+1 415 200 0022", None)
    assert [r.phone for r in found.rows] == [phone(22)]
    assert (await optouts.get_opt_out(api.principal.workspace_id, found.rows[0].id)) == found.rows[0]


async def test_stop_keywords_default_until_set(api: Api) -> None:
    assert await optouts.stop_keywords(api.principal.workspace_id) == DEFAULT_STOP_KEYWORDS
    assert await optouts.set_stop_keywords(api.principal, [" Stop ", "ARRÊT", "stop"]) == ("Stop", "ARRÊT")
    assert await optouts.stop_keywords(api.principal.workspace_id) == ("Stop", "ARRÊT")
    with pytest.raises(ValidationFailed):
        await optouts.set_stop_keywords(api.principal, [""])
    assert await optouts.stop_keywords(api.principal.workspace_id) == ("Stop", "ARRÊT")  # nothing written
