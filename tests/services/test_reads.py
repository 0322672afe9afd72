"""services/reads.py's connections on the real database: forward and backward keyset
pages, in the connection's order either way (campaigns newest first, messages oldest
first), hasNextPage and hasPreviousPage exact at every boundary, windows between two
cursors, and filters combined with paging."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from domain.ids import encode_cursor
from domain.lifecycle import CampaignStatus
from domain.paging import Window, window
from models import Campaign, Message
from services.campaigns import create_campaign
from services.reads import CampaignPage, MessagePage, Page, list_campaigns, list_messages
from services.recipients import add_recipients
from tests.conftest import Api, phone

Lister = Callable[[Window], Awaitable[Page]]


async def _campaigns(api: Api, n: int, name: str = "Campaign") -> list[int]:
    """`n` new campaigns' ids, newest first (the connection's order)."""
    ids = [(await create_campaign(api.principal, {"name": f"{name} {i}", "body": "Hi"})).id for i in range(n)]
    return ids[::-1]


async def _messages(api: Api, n: int) -> tuple[int, list[int]]:
    """A campaign with `n` recipients, and its messages' ids oldest first."""
    campaign = await create_campaign(api.principal, {"name": "Messages", "body": "Hi"})
    report = await add_recipients(api.principal, campaign.id, [(phone(i), {}) for i in range(n)])
    assert report.added == n
    messages = await Message.filter(campaign_id=campaign.id).order_by("id")
    return campaign.id, [m.id for m in messages]


def _ids(page: Page) -> list[int]:
    return [row.id for row in page.rows]


async def _info(page: Page) -> tuple[bool, bool]:
    return await page.has_previous_page(), await page.has_next_page()


async def _forward(lister: Lister, size: int) -> list[list[int]]:
    pages, after = [], None
    while True:
        page = await lister(window(size, after, None, None, 20))
        pages.append(_ids(page))
        if not await page.has_next_page():
            return pages
        after = encode_cursor(page.rows[-1].id)


async def _backward(lister: Lister, size: int) -> list[list[int]]:
    pages, before = [], None
    while True:
        page = await lister(window(None, None, size, before, 20))
        pages.append(_ids(page))
        if not await page.has_previous_page():
            return pages
        before = encode_cursor(page.rows[0].id)


async def test_campaigns_backward_are_forward_reversed_page_by_page(api: Api) -> None:
    expected = await _campaigns(api, 11)

    async def lister(w: Window) -> CampaignPage:
        return await list_campaigns(api.principal, w, None, None)

    forward = await _forward(lister, 4)
    assert forward == [expected[0:4], expected[4:8], expected[8:11]]
    backward = await _backward(lister, 4)
    # from the end: the last 4, then the 4 before them, then what is left; each in order
    assert backward == [expected[7:11], expected[3:7], expected[0:3]]
    assert [i for page in reversed(backward) for i in page] == expected


async def test_messages_backward_are_forward_reversed_page_by_page(api: Api) -> None:
    campaign_id, expected = await _messages(api, 7)

    async def lister(w: Window) -> MessagePage:
        return await list_messages(campaign_id, w, None)

    assert await _forward(lister, 3) == [expected[0:3], expected[3:6], expected[6:7]]
    backward = await _backward(lister, 3)
    assert backward == [expected[4:7], expected[1:4], expected[0:1]]
    assert [i for page in reversed(backward) for i in page] == expected


async def test_page_info_at_every_boundary_of_an_exact_multiple(api: Api) -> None:
    ids = await _campaigns(api, 6)

    async def page(first: int | None, after: int | None, last: int | None, before: int | None) -> CampaignPage:
        cursors = [encode_cursor(c) if c is not None else None for c in (after, before)]
        return await list_campaigns(api.principal, window(first, cursors[0], last, cursors[1], 20), None, None)

    first_page = await page(3, None, None, None)
    assert (_ids(first_page), await _info(first_page)) == (ids[0:3], (False, True))
    second = await page(3, ids[2], None, None)
    assert (_ids(second), await _info(second)) == (ids[3:6], (True, False))  # nothing past the 6th
    last_page = await page(None, None, 3, None)
    assert (_ids(last_page), await _info(last_page)) == (ids[3:6], (True, False))
    before_it = await page(None, None, 3, ids[3])
    assert (_ids(before_it), await _info(before_it)) == (ids[0:3], (False, True))
    everything = await page(10, None, None, None)
    assert (_ids(everything), await _info(everything)) == (ids, (False, False))
    from_the_end = await page(None, None, 10, None)
    assert (_ids(from_the_end), await _info(from_the_end)) == (ids, (False, False))


async def test_a_window_between_two_cursors_either_way(api: Api) -> None:
    ids = await _campaigns(api, 8)
    after, before = encode_cursor(ids[1]), encode_cursor(ids[6])  # the window is ids[2:6]

    async def read(first: int | None, last: int | None) -> CampaignPage:
        return await list_campaigns(api.principal, window(first, after, last, before, 20), None, None)

    head = await read(2, None)
    assert (_ids(head), await _info(head)) == (ids[2:4], (True, True))  # more in the window, rows before
    tail = await read(None, 2)
    assert (_ids(tail), await _info(tail)) == (ids[4:6], (True, True))  # more in the window, rows after
    whole = await read(10, None)
    assert (_ids(whole), await _info(whole)) == (ids[2:6], (True, False))  # hasNextPage is the window's
    whole_back = await read(None, 10)
    assert (_ids(whole_back), await _info(whole_back)) == (ids[2:6], (False, True))


async def test_zero_rows_still_say_whether_rows_follow(api: Api) -> None:
    ids = await _campaigns(api, 2)
    none_forward = await list_campaigns(api.principal, window(0, None, None, None, 20), None, None)
    assert (none_forward.rows, await _info(none_forward)) == ([], (False, True))
    none_back = await list_campaigns(api.principal, window(None, None, 0, None, 20), None, None)
    assert (none_back.rows, await _info(none_back)) == ([], (True, False))
    past_the_end = await list_campaigns(api.principal, window(5, encode_cursor(ids[-1]), None, None, 20), None, None)
    assert (past_the_end.rows, await _info(past_the_end)) == ([], (True, False))


async def test_filters_hold_on_every_page_and_in_page_info(api: Api) -> None:
    sales = await _campaigns(api, 5, name="Sale")
    others = await _campaigns(api, 3, name="Other")
    await Campaign.filter(id__in=sales[1::2]).update(status=CampaignStatus.CANCELLED)  # 2 of the sales
    drafts = [i for i in sales if i not in sales[1::2]]

    async def sales_pages(w: Window) -> CampaignPage:
        return await list_campaigns(api.principal, w, None, "sale")

    async def draft_sales(w: Window) -> CampaignPage:
        return await list_campaigns(api.principal, w, [CampaignStatus.DRAFT], "sale")

    assert await _forward(sales_pages, 2) == [sales[0:2], sales[2:4], sales[4:5]]
    assert await _backward(sales_pages, 2) == [sales[3:5], sales[1:3], sales[0:1]]
    assert await _backward(draft_sales, 2) == [drafts[1:3], drafts[0:1]]
    # the newer "Other" campaigns are not before the first sale, for hasPreviousPage
    newest_sale = await list_campaigns(api.principal, window(None, None, 5, encode_cursor(sales[1]), 20), None, "sale")
    assert (_ids(newest_sale), await _info(newest_sale)) == ([sales[0]], (False, True))
    assert (await newest_sale.total_count(), len(others)) == (5, 3)
    # the probes apply the filters too: past the last "Other" (just before the sales), no sale lies behind
    past_other = await list_campaigns(api.principal, window(2, encode_cursor(others[-1]), None, None, 20), None, "sale")
    assert (_ids(past_other), await _info(past_other)) == (sales[0:2], (False, True))
    past_sale = await list_campaigns(api.principal, window(2, encode_cursor(sales[0]), None, None, 20), None, "sale")
    assert (_ids(past_sale), await _info(past_sale)) == (sales[1:3], (True, True))


async def test_a_cursor_of_a_deleted_row_still_pages(api: Api) -> None:
    ids = await _campaigns(api, 5)
    await Campaign.filter(id=ids[2]).delete()
    after = await list_campaigns(api.principal, window(10, encode_cursor(ids[2]), None, None, 20), None, None)
    assert (_ids(after), await _info(after)) == (ids[3:5], (True, False))
    before = await list_campaigns(api.principal, window(None, None, 10, encode_cursor(ids[2]), 20), None, None)
    assert (_ids(before), await _info(before)) == (ids[0:2], (False, True))


async def test_page_info_asks_the_database_only_when_the_rows_cannot_tell(api: Api) -> None:
    ids = await _campaigns(api, 3)
    cursor = encode_cursor(ids[0])
    forward: Any = await list_campaigns(api.principal, window(1, cursor, None, None, 20), None, None)
    assert (forward.has_next, forward.has_previous) == (True, None)  # the extra row; a probe if asked
    backward: Any = await list_campaigns(api.principal, window(None, None, 1, encode_cursor(ids[2]), 20), None, None)
    assert (backward.has_next, backward.has_previous) == (None, True)
    plain: Any = await list_campaigns(api.principal, window(1, None, None, None, 20), None, None)
    assert (plain.has_next, plain.has_previous) == (True, False)  # nothing before the start


async def test_campaigns_read_with_their_count_count_what_the_count_query_counts(api: Api) -> None:
    ids = await _campaigns(api, 7, "Counted")
    await Campaign.filter(id__in=ids[:3]).update(status=CampaignStatus.PAUSED)
    cases: list[tuple[Window, list[CampaignStatus] | None, str | None]] = [
        (window(2, None, None, None, 20), None, None),
        (window(2, encode_cursor(ids[1]), None, None, 20), None, "counted"),  # past a cursor: the whole connection
        (window(None, None, 2, encode_cursor(ids[4]), 20), [CampaignStatus.PAUSED], None),
        (window(3, None, None, None, 20), [CampaignStatus.DRAFT], "Counted"),
    ]
    for w, statuses, search in cases:
        counted = await list_campaigns(api.principal, w, statuses, search, with_count=True)
        plain = await list_campaigns(api.principal, w, statuses, search)
        assert _ids(counted) == _ids(plain) and counted.count is not None and plain.count is None
        assert await counted.total_count() == await plain.total_count()
    assert (
        await (await list_campaigns(api.principal, window(2, None, None, None, 20), None, "counted")).total_count() == 7
    )


async def test_an_empty_page_read_with_its_count_still_counts_the_connection(api: Api) -> None:
    ids = await _campaigns(api, 3, "Emptied")
    past_the_end = await list_campaigns(
        api.principal, window(5, encode_cursor(ids[-1]), None, None, 20), None, "emptied", with_count=True
    )
    assert past_the_end.rows == [] and past_the_end.count is None  # no row to carry it
    assert await past_the_end.total_count() == 3
