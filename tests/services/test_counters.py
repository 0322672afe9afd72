"""services.counters.move on the real database: relative, atomic moves of a campaign's
counters in the caller's transaction, and `last_receipt_at` with them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.stats import STAT_FIELDS
from models import Campaign
from services import counters, db
from services.campaigns import create_campaign
from tests.conftest import Api


async def new_campaign(api: Api) -> int:
    campaign = await create_campaign(api.principal, {"name": "Counted", "body": "Hello"})
    return campaign.id


async def numbers(pk: int) -> dict[str, int]:
    campaign = await Campaign.get(id=pk)
    return {name: getattr(campaign, name) for name in STAT_FIELDS}


async def test_deltas_add_to_the_stored_counters_and_zero_deltas_leave_theirs_alone(api: Api) -> None:
    pk = await new_campaign(api)
    async with db.in_transaction() as conn:
        await counters.move(conn, pk, total=5, pending=5)
    async with db.in_transaction() as conn:
        await counters.move(conn, pk, pending=-3, sent=2, failed=1, delivered=0, read=0)
    assert await numbers(pk) == {
        "total": 5,
        "pending": 2,
        "sent": 2,
        "delivered": 0,
        "read": 0,
        "replied": 0,
        "failed": 1,
        "cancelled": 0,
    }


async def test_every_counter_moves_by_its_own_delta(api: Api) -> None:
    pk = await new_campaign(api)
    deltas: dict[str, Any] = {name: i + 1 for i, name in enumerate(STAT_FIELDS)}
    async with db.in_transaction() as conn:
        await counters.move(conn, pk, **deltas)
    assert await numbers(pk) == {name: i + 1 for i, name in enumerate(STAT_FIELDS)}


async def test_an_unknown_counter_is_refused_before_anything_is_written(api: Api) -> None:
    pk = await new_campaign(api)
    async with db.in_transaction() as conn:
        with pytest.raises(ValueError, match=r"not campaign counters: \['bogus', 'version'\]"):
            await counters.move(conn, pk, sent=1, version=1, bogus=2)
    campaign = await Campaign.get(id=pk)
    assert (campaign.sent, campaign.version) == (0, 1)


async def test_only_the_named_campaign_moves(api: Api) -> None:
    pk, other = await new_campaign(api), await new_campaign(api)
    async with db.in_transaction() as conn:
        await counters.move(conn, pk, total=3, pending=3)
    assert (await numbers(other))["total"] == 0
    assert (await numbers(pk))["total"] == 3


async def test_receipt_at_alone_records_when_receipts_moved_without_touching_counters(api: Api) -> None:
    pk = await new_campaign(api)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    async with db.in_transaction() as conn:
        await counters.move(conn, pk, receipt_at=at, sent=0)
    campaign = await Campaign.get(id=pk)
    assert campaign.last_receipt_at == at
    assert await numbers(pk) == dict.fromkeys(STAT_FIELDS, 0)
    later = at + timedelta(minutes=1)
    async with db.in_transaction() as conn:
        await counters.move(conn, pk, receipt_at=later, delivered=1)
    campaign = await Campaign.get(id=pk)
    assert (campaign.last_receipt_at, campaign.delivered) == (later, 1)


async def test_nothing_to_move_is_a_no_op_even_for_a_campaign_that_does_not_exist(api: Api) -> None:
    pk = await new_campaign(api)
    async with db.in_transaction() as conn:
        await counters.move(conn, pk, sent=0, failed=0)
        await counters.move(conn, 987_654_321)
        await counters.move(conn, 987_654_321, sent=4)  # no row: nothing to update, no error
    assert await numbers(pk) == dict.fromkeys(STAT_FIELDS, 0)


async def test_a_move_rolls_back_with_the_callers_transaction(api: Api) -> None:
    pk = await new_campaign(api)
    with pytest.raises(LookupError):
        async with db.in_transaction() as conn:
            await counters.move(conn, pk, total=2, pending=2, receipt_at=datetime.now(UTC))
            raise LookupError("the writer failed after moving the counters")
    campaign = await Campaign.get(id=pk)
    assert (campaign.total, campaign.pending, campaign.last_receipt_at) == (0, 0, None)


async def test_concurrent_moves_all_add_up(api: Api) -> None:
    """Each move is `x = x + ?` in one statement, not a read and a write: twenty
    transactions moving the same counters at once lose none of their deltas."""
    pk = await new_campaign(api)

    async def one(i: int) -> None:
        async with db.in_transaction() as conn:
            await counters.move(conn, pk, total=1, pending=1, sent=i % 2)

    await asyncio.gather(*(one(i) for i in range(20)))
    got = await numbers(pk)
    assert (got["total"], got["pending"], got["sent"]) == (20, 20, 10)
