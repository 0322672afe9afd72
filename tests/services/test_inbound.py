"""services/inbound.py on the real database: which workspace an inbound webhook belongs
to, replies counted once for the latest message sent to the phone, stop keywords and
marketing preferences learned and lifted, all idempotent."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from domain.inbound import Inbound, InboundMessage, PreferenceChange
from domain.optouts import OptOutSource
from models import Campaign, Message, OptOut
from services import db, inbound, optouts
from services.inbound import InboundReport
from tests.conftest import Api, phone
from tests.services.test_receipts import assert_consistent, prepare

NUMBER = "100000000000001"


async def apply(events: Sequence[Inbound]) -> InboundReport:
    async with db.in_transaction() as conn:
        planned = await inbound.plan(conn, events)
        return await inbound.apply(conn, planned, len(events))


def wa(phone: str) -> str:
    return phone.lstrip("+")


def text(phone: str, body: str, at: datetime, n: int = 1) -> InboundMessage:
    return InboundMessage(NUMBER, wa(phone), f"wamid.IN{n}", int(at.timestamp()), "text", body)


def preference(phone: str, value: str, at: datetime, category: str = "marketing_messages") -> PreferenceChange:
    return PreferenceChange(NUMBER, wa(phone), category, value, int(at.timestamp()), None)


#: phones no other test of the session messages: with one sender for every workspace, an
#: inbound message belongs to whoever messaged its phone last
_FRESH = itertools.count(700_000 + random.randrange(200_000))


async def sent_campaign(api: Api, n: int = 2, sent_at: datetime | None = None) -> tuple[int, list[int], list[str]]:
    pk, ids = await prepare(api, sent=n)
    phones = [phone(next(_FRESH)) for _ in ids]
    for mid, number in zip(ids, phones, strict=True):
        await Message.filter(id=mid).update(phone=number, **({"sent_at": sent_at} if sent_at else {}))
    return pk, ids, phones


async def opt_outs(api: Api) -> list[tuple[str, str, str | None]]:
    rows = (
        await OptOut.filter(workspace_id=api.principal.workspace_id)
        .order_by("id")
        .values_list("phone", "source", "detail")
    )
    return [(p, str(s), d) for p, s, d in rows]


async def test_the_workspace_is_that_of_the_latest_message_sent_to_the_phone(api: Api, other_api: Api) -> None:
    old = datetime.now(UTC) - timedelta(hours=2)
    _, _, phones = await sent_campaign(api, 1, sent_at=old)
    pk_other, ids_other = await prepare(other_api, pending=1)
    # the other workspace sends to the same phone later
    await Message.filter(id=ids_other[0]).update(phone=phones[0], sent_at=old + timedelta(hours=1))
    async with db.in_transaction() as conn:
        assert await inbound.workspace_for(conn, NUMBER, wa(phones[0])) == other_api.principal.workspace_id
        assert await inbound.workspace_for(conn, NUMBER, wa(phone(next(_FRESH)))) is None  # never sent to
        assert await inbound.workspace_for(conn, NUMBER, "not-a-phone") is None
    await Campaign.filter(id=pk_other).update(pending=0, sent=1)
    await Message.filter(id=ids_other[0]).update(status="SENT")


async def test_a_reply_counts_once_for_the_latest_message_sent_before_it(api: Api) -> None:
    t = datetime.now(UTC).replace(microsecond=0)
    first, _, phones = await sent_campaign(api, 2, sent_at=t - timedelta(hours=3))
    later, later_ids = await prepare(api, pending=1)
    await Message.filter(id=later_ids[0]).update(phone=phones[0], status="SENT", sent_at=t - timedelta(hours=1))
    await Campaign.filter(id=later).update(pending=0, sent=1)
    report = await apply([text(phones[0], "thanks!", t), text(phones[0], "and again", t + timedelta(seconds=5), 2)])
    assert (report.replies, report.campaign_ids) == (1, {later})  # the latest message, once
    assert (await Message.get(id=later_ids[0])).replied_at == t
    assert (await Campaign.get(id=later)).replied == 1 and (await Campaign.get(id=first)).replied == 0
    # Meta posts it again: nothing moves; a reply to the older campaign's other phone counts there
    assert (await apply([text(phones[0], "thanks!", t)])).replies == 0
    assert (await apply([text(phones[1], "hi", t)])).replies == 1
    assert (await Campaign.get(id=first)).replied == 1
    await assert_consistent(first)
    await assert_consistent(later)


async def test_a_reply_written_before_the_message_was_sent_counts_for_none(api: Api) -> None:
    t = datetime.now(UTC).replace(microsecond=0)
    pk, _, phones = await sent_campaign(api, 1, sent_at=t)
    report = await apply([text(phones[0], "hello?", t - timedelta(minutes=5))])
    assert report.replies == 0 and (await Campaign.get(id=pk)).replied == 0
    # within the clock slack it counts (Meta's seconds, its clock)
    assert (await apply([text(phones[0], "hello", t - timedelta(seconds=2))])).replies == 1
    await assert_consistent(pk)


async def test_a_stop_keyword_opts_the_phone_out_and_counts_as_a_reply(api: Api) -> None:
    t = datetime.now(UTC).replace(microsecond=0)
    pk, _, phones = await sent_campaign(api, 3, sent_at=t - timedelta(minutes=1))
    report = await apply(
        [text(phones[0], "  stop ", t), text(phones[1], "please stop", t, 2), text(phones[2], "Quit", t, 3)]
    )
    assert (report.opted_out, report.replies) == (2, 3)
    assert await opt_outs(api) == [(phones[0], "KEYWORD", 'replied "STOP"'), (phones[2], "KEYWORD", 'replied "QUIT"')]
    created = await OptOut.get(workspace_id=api.principal.workspace_id, phone=phones[0]).values_list(
        "created_at", flat=True
    )
    assert created == t  # when the person wrote it
    await assert_consistent(pk)


async def test_the_workspaces_own_keywords_decide(api: Api) -> None:
    t = datetime.now(UTC).replace(microsecond=0)
    _, _, phones = await sent_campaign(api, 2, sent_at=t - timedelta(minutes=1))
    await optouts.set_stop_keywords(api.principal, ["ARRÊT"])
    report = await apply([text(phones[0], "STOP", t), text(phones[1], "arrêt", t, 2)])
    assert report.opted_out == 1 and await opt_outs(api) == [(phones[1], "KEYWORD", 'replied "ARRÊT"')]


async def test_marketing_stop_adds_and_resume_lifts_in_the_order_they_happened(api: Api) -> None:
    t = datetime.now(UTC).replace(microsecond=0)
    _, _, phones = await sent_campaign(api, 2, sent_at=t - timedelta(hours=1))
    a, b = phones
    report = await apply(
        [preference(a, "stop", t), preference(b, "stop", t), preference(a, "stop", t, "utility_messages")]
    )
    assert report.opted_out == 2
    assert [s for _, s, _ in await opt_outs(api)] == ["USER_PREFERENCES", "USER_PREFERENCES"]
    # a resume older than the stop (webhooks come in any order) lifts nothing
    assert (await apply([preference(a, "resume", t - timedelta(minutes=1))])).lifted == 0
    assert (await apply([preference(a, "resume", t + timedelta(minutes=1))])).lifted == 1
    # a stop and the resume after it in one body: opted in at the end
    report = await apply(
        [preference(b, "resume", t + timedelta(minutes=2)), preference(b, "stop", t + timedelta(minutes=1))]
    )
    assert await opt_outs(api) == []
    # a resume does not lift what the person asked of the business itself
    await apply([text(a, "STOP", t + timedelta(minutes=3))])
    assert (await apply([preference(a, "resume", t + timedelta(minutes=4))])).lifted == 0
    assert [s for _, s, _ in await opt_outs(api)] == [OptOutSource.KEYWORD.value]


async def test_an_event_from_a_phone_never_messaged_is_unrouted(api: Api) -> None:
    t = datetime.now(UTC)
    never = phone(next(_FRESH))
    report = await apply([text(never, "STOP", t), preference(never, "stop", t)])
    assert (report.unrouted, report.opted_out, report.replies) == (2, 0, 0)
