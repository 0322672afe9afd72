"""services.inbox on the real database: webhook bodies durable before `put` returns,
committed in groups, applied once and deleted in the same transaction."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.applications import Starlette

from models import Message
from services import db, inbox
from services.inbox import InboxApplier, InboxWriter
from tests.conftest import Api
from tests.services.test_receipts import T0, assert_consistent, pid, prepare


def webhook(*statuses: tuple[int, str, int]) -> str:
    """A Meta payload with one status per (message id, status, campaign id)."""
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "1",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "statuses": [
                                    {
                                        "id": pid(mid),
                                        "status": state,
                                        "timestamp": str(T0),
                                        "biz_opaque_callback_data": f"c{cid}:m{mid}:r0",
                                    }
                                    for mid, state, cid in statuses
                                ]
                            },
                        }
                    ],
                }
            ],
        }
    )


@pytest.fixture
async def quiet_app_applier(app: Starlette) -> object:
    """The session app's own applier would take these rows first: stopped meanwhile."""
    await app.state.applier.close()
    yield None
    await app.state.applier.start()


async def inbox_rows() -> int:
    return int(await db.fetch_val(db.client(), "SELECT COUNT(*) AS n FROM webhook_inbox") or 0)


async def test_concurrent_bodies_are_committed_in_groups_and_durable_when_put_returns(
    api: Api, quiet_app_applier: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    inserts: list[int] = []
    real = inbox.insert

    async def counted(bodies: list[str]) -> None:
        inserts.append(len(bodies))
        await real(bodies)

    monkeypatch.setattr(inbox, "insert", counted)
    writer = InboxWriter()
    await writer.start()
    try:
        before = await inbox_rows()
        await asyncio.gather(*(writer.put(webhook((i, "sent", 1))) for i in range(300)))
        assert await inbox_rows() == before + 300  # every put that returned is in the table
    finally:
        await writer.close()
    assert sum(inserts) == 300 and len(inserts) < 300 / 5  # group commits, not one per request
    await InboxApplier().apply_once()  # (unknown messages: applied as nothing, and deleted)


async def test_the_applier_applies_each_body_once_and_deletes_it(api: Api, quiet_app_applier: object) -> None:
    pk, ids = await prepare(api, sent=3)
    writer = InboxWriter()
    await writer.start()
    try:
        await writer.put(webhook((ids[0], "delivered", pk), (ids[1], "read", pk)))
        await writer.put(webhook((ids[2], "delivered", pk)))
        await writer.put(webhook((ids[0], "delivered", pk)))  # Meta redelivers
    finally:
        await writer.close()
    moved: list[int] = []
    appliers = [InboxApplier(touched=moved.extend) for _ in range(2)]
    # two appliers at once (two API processes): each body is taken by one of them
    batches = await asyncio.gather(*(a.apply_once() for a in appliers))
    assert sum(b.rows for b in batches) == 3
    assert sum(b.report.applied for b in batches) == 3
    assert sum(b.report.unchanged for b in batches) == 1  # the redelivered one changed nothing
    assert await inbox_rows() == 0
    assert (await assert_consistent(pk))["delivered"] == 3
    assert set(moved) == {pk}  # the progress publisher hears of the campaign


async def test_put_fails_loudly_when_the_writer_is_not_running() -> None:
    writer = InboxWriter()
    with pytest.raises(ConnectionError):
        await writer.put("{}")


async def test_a_body_that_cannot_be_applied_is_set_aside_and_the_rest_applied(
    api: Api, quiet_app_applier: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pk, ids = await prepare(api, sent=3)
    real = inbox.apply_receipts

    async def choking(receipts: list[Any], conn: Any, also_lock: Any = None, **options: Any) -> Any:
        if any(r.message_id == ids[1] for r in receipts):
            raise RuntimeError("this body breaks the applier")
        return await real(receipts, conn, also_lock, **options)

    monkeypatch.setattr(inbox, "apply_receipts", choking)
    await inbox.insert([webhook((mid, "delivered", pk)) for mid in ids])
    batch = await InboxApplier().apply_once()
    assert batch.rows == 2 and batch.report.applied == 2
    assert await inbox_rows() == 0
    statuses = dict(await Message.filter(campaign_id=pk).values_list("id", "status"))
    assert [statuses[i] for i in ids] == ["DELIVERED", "SENT", "DELIVERED"]
    assert any("set aside" in r.getMessage() and str(ids[1]) in r.getMessage() for r in caplog.records)
