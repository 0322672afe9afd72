"""services.receipts.apply_receipts on the real database: message rows and campaign
counters move together, idempotently, in order of strength."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.ids import expect_id
from domain.lifecycle import CampaignStatus
from domain.messages import FAILURE_TEXTS
from domain.optouts import OptOutSource
from domain.sending import Receipt
from models import Campaign, CampaignBillable, Message, OptOut
from services import db
from services import receipts as receipts_service
from services.receipts import ReceiptReport, apply_receipts
from tests.conftest import Api
from tests.schema.states import campaign_in

T0 = 1_700_000_000


def pid(message_id: int) -> str:
    return f"wamid.TEST{message_id}"


async def prepare(api: Api, *, sending: int = 0, sent: int = 0, pending: int = 0) -> tuple[int, list[int]]:
    """A PROCESSING campaign whose first `sending` messages are SENDING (claimed, not
    yet written back), the next `sent` SENT with a provider id, the rest PENDING;
    counters kept consistent the way the worker keeps them."""
    total = sending + sent + pending
    view = await campaign_in(api, CampaignStatus.PROCESSING, recipients=total)
    pk = expect_id(view["id"], "Campaign")
    ids: list[int] = await Message.filter(campaign_id=pk).order_by("id").values_list("id", flat=True)  # type: ignore[assignment]
    async with db.in_transaction() as conn:
        if sending:
            await Message.filter(id__in=ids[:sending]).using_db(conn).update(status="SENDING", attempts=1)
        now = datetime.now(UTC)
        for mid in ids[sending : sending + sent]:
            await db.execute(
                conn,
                "UPDATE message SET status = 'SENT', provider_message_id = ?, sent_at = ?, attempts = 1 WHERE id = ?",
                [pid(mid), now, mid],
            )
        if sent:
            await db.execute(
                conn,
                "UPDATE campaign SET pending = pending - ?, sent = sent + ? WHERE id = ?",
                [sent, sent, pk],
            )
    await assert_consistent(pk)
    return pk, ids


async def assert_consistent(campaign_id: int) -> dict[str, int]:
    """The campaign's counters equal a GROUP BY over its messages."""
    rows = await db.fetch(
        db.client(),
        "SELECT status, COUNT(*) AS n FROM message WHERE campaign_id = ? GROUP BY status",
        [campaign_id],
    )
    by = {r["status"]: int(r["n"]) for r in rows}
    truth = {
        "pending": by.get("PENDING", 0) + by.get("SENDING", 0),
        "sent": by.get("SENT", 0) + by.get("DELIVERED", 0) + by.get("READ", 0),
        "delivered": by.get("DELIVERED", 0) + by.get("READ", 0),
        "read": by.get("READ", 0),
        "failed": by.get("FAILED", 0),
        "cancelled": by.get("CANCELLED", 0),
    }
    campaign = await Campaign.get(id=campaign_id)
    counters = {name: getattr(campaign, name) for name in truth}
    assert counters == truth
    assert campaign.total == campaign.pending + campaign.sent + campaign.failed + campaign.cancelled
    assert campaign.read <= campaign.delivered <= campaign.sent
    # the numbers kept beside the statuses: replies and billable messages
    replied = await Message.filter(campaign_id=campaign_id, replied_at__isnull=False).count()
    assert campaign.replied == replied <= campaign.total
    billed = await db.fetch(
        db.client(),
        "SELECT billable_category AS category, COUNT(*) AS n FROM message WHERE campaign_id = ? "
        "AND billable_category IS NOT NULL GROUP BY billable_category",
        [campaign_id],
    )
    kept = await CampaignBillable.filter(campaign_id=campaign_id, count__gt=0).values_list("category", "count")
    assert dict(kept) == {row["category"]: int(row["n"]) for row in billed}
    return counters


def r(
    mid: int,
    status: str,
    ts: int = T0,
    *,
    ours: bool = True,
    code: str | None = None,
    message: str | None = None,
) -> Receipt:
    return Receipt(
        provider_message_id=pid(mid),
        status=status,
        timestamp=ts,
        message_id=mid if ours else None,
        error_code=code,
        error_message=message,
    )


async def statuses(ids: Sequence[int]) -> list[str]:
    by_id = dict(await Message.filter(id__in=list(ids)).values_list("id", "status"))
    return [str(by_id[i]) for i in ids]


def counts(report: ReceiptReport) -> tuple[int, int, int]:
    return report.applied, report.unchanged, report.unknown


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def test_delivered_and_read(api: Api) -> None:
    pk, ids = await prepare(api, sent=3)
    report = await apply_receipts([r(ids[0], "delivered", T0 + 1), r(ids[1], "read", T0 + 2)])
    assert counts(report) == (2, 0, 0)
    assert report.campaign_ids == {pk}
    assert await statuses(ids) == ["DELIVERED", "READ", "SENT"]
    assert await assert_consistent(pk) == {
        "pending": 0,
        "sent": 3,
        "delivered": 2,
        "read": 1,
        "failed": 0,
        "cancelled": 0,
    }
    first, second = await Message.get(id=ids[0]), await Message.get(id=ids[1])
    assert first.delivered_at == at(T0 + 1) and first.read_at is None
    # read implies delivered: delivered_at filled from the read receipt
    assert second.delivered_at == at(T0 + 2) and second.read_at == at(T0 + 2)


async def test_read_before_delivered_in_one_batch(api: Api) -> None:
    pk, ids = await prepare(api, sent=2)
    report = await apply_receipts(
        [r(ids[0], "read", T0 + 9), r(ids[0], "delivered", T0 + 5), r(ids[1], "delivered", T0 + 5)]
    )
    assert counts(report) == (3, 0, 0)
    assert await statuses(ids) == ["READ", "DELIVERED"]
    m = await Message.get(id=ids[0])
    assert (m.delivered_at, m.read_at) == (at(T0 + 5), at(T0 + 9))
    await assert_consistent(pk)


async def test_read_before_delivered_across_batches(api: Api) -> None:
    pk, ids = await prepare(api, sent=1)
    assert counts(await apply_receipts([r(ids[0], "read", T0 + 9)])) == (1, 0, 0)
    assert counts(await apply_receipts([r(ids[0], "delivered", T0 + 5)])) == (0, 1, 0)
    assert counts(await apply_receipts([r(ids[0], "sent", T0 + 1)])) == (0, 1, 0)
    assert await statuses(ids) == ["READ"]
    assert await assert_consistent(pk) == {
        "pending": 0,
        "sent": 1,
        "delivered": 1,
        "read": 1,
        "failed": 0,
        "cancelled": 0,
    }


async def test_duplicates_change_nothing(api: Api) -> None:
    pk, ids = await prepare(api, sent=2)
    batch = [r(ids[0], "delivered"), r(ids[0], "delivered"), r(ids[1], "sent")]
    assert counts(await apply_receipts(batch)) == (1, 2, 0)
    before = await assert_consistent(pk)
    again = await apply_receipts(batch)
    assert counts(again) == (0, 3, 0)
    assert again.campaign_ids == set()
    assert await assert_consistent(pk) == before
    assert await statuses(ids) == ["DELIVERED", "SENT"]


async def test_failed_after_sent_moves_sent_to_failed(api: Api) -> None:
    pk, ids = await prepare(api, sent=2)
    report = await apply_receipts(
        [r(ids[0], "failed", T0 + 3, code="131026", message="Message undeliverable: not on WhatsApp")]
    )
    assert counts(report) == (1, 0, 0)
    assert await assert_consistent(pk) == {
        "pending": 0,
        "sent": 1,
        "delivered": 0,
        "read": 0,
        "failed": 1,
        "cancelled": 0,
    }
    m = await Message.get(id=ids[0])
    assert (m.status, m.error_code, m.failed_at) == ("FAILED", "131026", at(T0 + 3))
    # what to do first (domain/messages.FAILURE_TEXTS), then the provider's own words
    assert m.error_message is not None and m.error_message.startswith("Undeliverable: the number is not on WhatsApp")
    assert m.error_message.endswith("(WhatsApp: Message undeliverable: not on WhatsApp)")
    # a later delivered for a failed message is ignored
    assert counts(await apply_receipts([r(ids[0], "delivered")])) == (0, 1, 0)
    await assert_consistent(pk)


async def test_failed_after_delivered_is_ignored(api: Api) -> None:
    pk, ids = await prepare(api, sent=2)
    await apply_receipts([r(ids[0], "delivered"), r(ids[1], "read")])
    report = await apply_receipts([r(ids[0], "failed", code="131026"), r(ids[1], "failed", code="131026")])
    assert counts(report) == (0, 2, 0)
    assert await statuses(ids) == ["DELIVERED", "READ"]
    assert (await Message.get(id=ids[0])).error_code is None
    # in one batch too: delivered wins over failed, whatever the order in the batch
    pk2, ids2 = await prepare(api, sent=1)
    report = await apply_receipts([r(ids2[0], "failed", code="131026"), r(ids2[0], "delivered")])
    assert counts(report) == (1, 1, 0)
    assert await statuses(ids2) == ["DELIVERED"]
    await assert_consistent(pk)
    await assert_consistent(pk2)


async def test_receipts_for_sending_messages(api: Api) -> None:
    """The receipt overtook the worker's write-back: the message leaves pending."""
    pk, ids = await prepare(api, sending=5, pending=1)
    report = await apply_receipts(
        [
            r(ids[0], "sent", T0 + 1),
            r(ids[1], "delivered", T0 + 2),
            r(ids[2], "read", T0 + 3),
            r(ids[3], "failed", T0 + 4, code="131026", message="undeliverable"),
            r(ids[4], "sent", T0 + 1),
            r(ids[4], "failed", T0 + 5, code="131051"),
        ]
    )
    assert counts(report) == (6, 0, 0)
    assert await statuses(ids) == ["SENT", "DELIVERED", "READ", "FAILED", "FAILED", "PENDING"]
    assert await assert_consistent(pk) == {
        "pending": 1,
        "sent": 3,
        "delivered": 2,
        "read": 1,
        "failed": 2,
        "cancelled": 0,
    }
    rows = {m.id: m for m in await Message.filter(id__in=ids)}
    assert [rows[i].provider_message_id for i in ids] == [pid(i) for i in ids[:5]] + [None]
    read = rows[ids[2]]
    assert (read.sent_at, read.delivered_at, read.read_at) == (at(T0 + 3),) * 3
    assert (rows[ids[4]].error_code, rows[ids[4]].sent_at, rows[ids[4]].failed_at) == (
        "131051",
        at(T0 + 1),
        at(T0 + 5),
    )


async def test_receipts_settle_in_doubt_messages_put_back_to_pending(api: Api) -> None:
    """A worker died after the provider accepted a message and before recording it; the
    next run put it back to PENDING for a resend. Its receipt proves it was accepted: it
    settles the message (no resend needed). A PENDING message that has another provider
    id stands for another send: a receipt about this one changes nothing (it is stale)."""
    pk, ids = await prepare(api, pending=2)
    await Message.filter(id=ids[1]).update(provider_message_id="wamid.OLD")
    report = await apply_receipts([r(ids[0], "delivered", T0 + 2), r(ids[1], "read", T0 + 3, ours=True)])
    assert counts(report) == (1, 0, 0) and report.stale == 1
    assert await statuses(ids) == ["DELIVERED", "PENDING"]
    assert (await assert_consistent(pk))["delivered"] == 1


async def test_found_by_provider_id_without_callback_data(api: Api) -> None:
    pk, ids = await prepare(api, sent=2)
    report = await apply_receipts([r(ids[0], "delivered", ours=False), r(ids[1], "read", ours=False)])
    assert counts(report) == (2, 0, 0)
    assert await statuses(ids) == ["DELIVERED", "READ"]
    await assert_consistent(pk)


async def test_unknown_ids_are_counted_and_ignored(api: Api) -> None:
    pk, ids = await prepare(api, sent=1)
    before = await assert_consistent(pk)
    report = await apply_receipts(
        [
            Receipt(provider_message_id="wamid.NOPE1", status="delivered", timestamp=T0),
            Receipt(provider_message_id="wamid.NOPE2", status="read", timestamp=T0, message_id=2**53),
            Receipt(provider_message_id="", status="read", timestamp=T0, message_id=2**52),
            # an id of ours that does not exist, but the provider id is known
            Receipt(provider_message_id=pid(ids[0]), status="delivered", timestamp=T0, message_id=2**51),
        ]
    )
    assert counts(report) == (1, 0, 3)
    assert await assert_consistent(pk) == before | {"delivered": 1}
    assert counts(await apply_receipts([])) == (0, 0, 0)


async def test_several_campaigns_in_one_batch(api: Api) -> None:
    a, ids_a = await prepare(api, sent=2)
    b, ids_b = await prepare(api, sending=2)
    report = await apply_receipts([r(ids_a[0], "read"), r(ids_b[1], "delivered"), r(ids_b[0], "failed", code="131026")])
    assert counts(report) == (3, 0, 0)
    assert report.campaign_ids == {a, b}
    await assert_consistent(a)
    await assert_consistent(b)


async def test_a_row_changed_under_us_is_reread(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker writes SENDING -> SENT (and its counters) after the receipts' SELECT:
    the conditional UPDATE misses, the row is re-read and folded from SENT."""
    pk, ids = await prepare(api, sending=3)
    original = receipts_service._find

    async def racing_find(conn: Any, batch: Sequence[Receipt]) -> Any:
        found = await original(conn, batch)
        for mid in ids[:2]:  # the worker's write, committed in between
            await db.execute(
                conn,
                "UPDATE message SET status = 'SENT', provider_message_id = ? WHERE id = ? AND status = 'SENDING'",
                [pid(mid), mid],
            )
        await db.execute(conn, "UPDATE campaign SET pending = pending - 2, sent = sent + 2 WHERE id = ?", [pk])
        return found

    monkeypatch.setattr(receipts_service, "_find", racing_find)
    report = await apply_receipts([r(ids[0], "delivered"), r(ids[1], "sent"), r(ids[2], "read")])
    # ids[1]: the worker already wrote SENT, so its "sent" receipt is a duplicate now
    assert counts(report) == (2, 1, 0)
    assert await statuses(ids) == ["DELIVERED", "SENT", "READ"]
    assert await assert_consistent(pk) == {
        "pending": 0,
        "sent": 3,
        "delivered": 2,
        "read": 1,
        "failed": 0,
        "cancelled": 0,
    }


async def test_thousands_of_receipts_in_one_call(api: Api) -> None:
    n = 2500  # more than two chunks of reads and writes
    pk, ids = await prepare(api, sending=500, sent=n - 500)
    batch: list[Receipt] = []
    for k, mid in enumerate(ids):
        if k % 5 == 0:
            batch += [r(mid, "read", T0 + 2), r(mid, "delivered", T0 + 1)]
        elif k % 5 == 1:
            # a SENDING message has no provider id yet: only ours finds it
            batch.append(r(mid, "delivered", T0 + 1, ours=k < 500 or k % 2 == 0))
        elif k % 5 == 2:
            batch.append(r(mid, "failed", T0 + 1, code="131026"))
        elif k % 5 == 3:
            batch.append(r(mid, "sent", T0))
        # k % 5 == 4: no receipt
    batch.append(r(10**12, "read"))
    started = time.perf_counter()
    report = await apply_receipts(batch)
    elapsed = time.perf_counter() - started
    assert report.unknown == 1
    assert report.applied + report.unchanged + report.unknown == len(batch)
    assert report.campaign_ids == {pk}
    counters = await assert_consistent(pk)
    assert counters["read"] == n // 5 and counters["failed"] == n // 5
    assert counters["delivered"] == 2 * n // 5
    assert elapsed < 10, elapsed
    again = await apply_receipts(batch)
    assert (again.applied, again.unknown) == (0, 1)
    assert await assert_consistent(pk) == counters


async def test_a_late_receipt_of_an_earlier_round_never_lands_on_the_resend(api: Api) -> None:
    """Finding 3: receipts were matched by our message id alone, so a late receipt of
    round 0 landed on the round-1 resend made by RETRY_FAILED and overwrote its provider
    id. Callback data now carries the round, and a provider id is checked."""
    pk, ids = await prepare(api, sent=1)
    await Message.filter(id=ids[0]).update(send_round=1, provider_message_id="wamid.ROUND1")
    late = Receipt("wamid.ROUND0", "read", T0 + 9, message_id=ids[0], send_round=0)
    report = await apply_receipts([late])
    assert (report.applied, report.stale) == (0, 1)
    row = await Message.get(id=ids[0])
    assert (row.status, row.provider_message_id) == ("SENT", "wamid.ROUND1")
    # a receipt in the old format (no round) about another provider message: stale too
    report = await apply_receipts([Receipt("wamid.ROUND0", "delivered", T0 + 9, message_id=ids[0])])
    assert report.stale == 1 and (await Message.get(id=ids[0])).status == "SENT"
    # the resend's own receipts apply
    report = await apply_receipts([Receipt("wamid.ROUND1", "delivered", T0 + 9, message_id=ids[0], send_round=1)])
    assert report.applied == 1 and (await Message.get(id=ids[0])).status == "DELIVERED"
    await assert_consistent(pk)


async def test_a_receipt_resolves_an_in_doubt_failure(api: Api) -> None:
    """Finding 4: a message failed `in_doubt` ignored the receipts that prove it went out,
    and RETRY_FAILED would have sent it again."""
    pk, ids = await prepare(api, pending=3)
    async with db.in_transaction() as conn:
        await db.execute(
            conn,
            "UPDATE message SET status = 'FAILED', error_code = 'in_doubt', error_message = 'unknown', "
            "failed_at = ? WHERE id IN (?, ?)",
            [datetime.now(UTC), ids[0], ids[1]],
        )
        await db.execute(conn, "UPDATE campaign SET pending = pending - 2, failed = failed + 2 WHERE id = ?", [pk])
    await assert_consistent(pk)
    failure = Receipt(pid(ids[1]), "failed", T0 + 4, message_id=ids[1], send_round=0, error_code="131026")
    report = await apply_receipts([Receipt(pid(ids[0]), "delivered", T0 + 3, message_id=ids[0], send_round=0), failure])
    assert report.applied == 2
    settled = await Message.get(id=ids[0])
    assert (settled.status, settled.error_code, settled.failed_at) == ("DELIVERED", None, None)
    assert settled.provider_message_id == pid(ids[0]) and settled.sent_at is not None
    really_failed = await Message.get(id=ids[1])
    assert (really_failed.status, really_failed.error_code) == ("FAILED", "131026")
    counters = await assert_consistent(pk)
    assert (counters["sent"], counters["delivered"], counters["failed"], counters["pending"]) == (1, 1, 1, 1)
    assert (await Campaign.get(id=pk)).last_receipt_at is not None


# ------------------------------------------------------- pricing and 131050


def billed(mid: int, status: str, category: str | None, ts: int = T0) -> Receipt:
    return Receipt(pid(mid), status, ts, message_id=mid, send_round=0, billable_category=category)


async def billable_of(pk: int) -> dict[str, int]:
    return dict(await CampaignBillable.filter(campaign_id=pk).values_list("category", "count"))


async def test_a_message_is_billed_once_the_first_time_a_billable_status_names_it(api: Api) -> None:
    pk, ids = await prepare(api, sending=2, sent=2)
    # out of order and repeated: read before sent, delivered twice, sent again
    await apply_receipts(
        [billed(ids[0], "read", "marketing", T0 + 5), billed(ids[0], "delivered", "marketing", T0 + 4)]
    )
    await apply_receipts(
        [billed(ids[0], "sent", "marketing", T0 + 1), billed(ids[0], "delivered", "marketing", T0 + 4)]
    )
    # a status without pricing, then one with: counted at the one that says it
    await apply_receipts([billed(ids[1], "sent", None)])
    assert await billable_of(pk) == {"marketing": 1}
    await apply_receipts([billed(ids[1], "delivered", "utility")])
    # pricing on a status that moves nothing (the message is READ already) still counts once
    await apply_receipts([billed(ids[2], "read", None)])
    report = await apply_receipts([billed(ids[2], "delivered", "marketing"), billed(ids[2], "sent", "marketing")])
    assert (report.applied, report.billable) == (0, 1)
    # a category seen first stays the message's, whatever a later status says
    await apply_receipts([billed(ids[1], "read", "marketing")])
    assert await billable_of(pk) == {"marketing": 2, "utility": 1}
    rows = dict(await Message.filter(id__in=ids).values_list("id", "billable_category"))
    assert [rows[i] for i in ids] == ["marketing", "utility", "marketing", None]
    await assert_consistent(pk)


async def test_a_status_that_is_not_billable_counts_nothing(api: Api) -> None:
    pk, ids = await prepare(api, sent=1)
    report = await apply_receipts([billed(ids[0], "delivered", None)])
    assert report.billable == 0 and await billable_of(pk) == {}
    assert (await Message.get(id=ids[0])).status == "DELIVERED"
    await assert_consistent(pk)


async def test_a_failure_with_131050_opts_the_phone_out_in_the_campaigns_workspace(api: Api, other_api: Api) -> None:
    pk, ids = await prepare(api, sent=2)
    phones = dict(await Message.filter(id__in=ids).values_list("id", "phone"))
    stopped = Receipt(pid(ids[0]), "failed", T0 + 3, message_id=ids[0], error_code="131050", error_message="stopped")
    other = Receipt(pid(ids[1]), "failed", T0 + 3, message_id=ids[1], error_code="131026")
    report = await apply_receipts([stopped, other])
    assert (report.applied, report.opted_out) == (2, 1)
    found = await OptOut.filter(workspace_id=api.principal.workspace_id).values_list("phone", "source")
    assert found == [(phones[ids[0]], OptOutSource.ERROR_131050)]
    assert not await OptOut.filter(workspace_id=other_api.principal.workspace_id).exists()
    # the same failure again (Meta redelivers) learns nothing new
    assert (await apply_receipts([stopped])).opted_out == 0
    message = await Message.get(id=ids[0])
    assert message.error_code == "131050" and message.error_message is not None
    assert message.error_message.startswith(FAILURE_TEXTS["131050"])
    await assert_consistent(pk)


async def test_a_failure_with_131049_waits_to_be_sent_again_in_a_new_round(api: Api) -> None:
    pk, ids = await prepare(api, sent=2)
    limited = Receipt(
        pid(ids[0]),
        "failed",
        T0 + 3,
        message_id=ids[0],
        send_round=0,
        error_code="131049",
        error_message="healthy ecosystem engagement",
    )
    report = await apply_receipts([limited])
    assert (report.applied, report.deferred) == (1, 1)
    row = await Message.get(id=ids[0])
    assert (row.status, row.error_code, row.send_round, row.deferrals) == ("PENDING", "131049", 1, 1)
    assert (row.provider_message_id, row.sent_at, row.failed_at) == (None, None, None)
    assert row.not_before is not None and row.not_before > datetime.now(UTC) + timedelta(minutes=59)
    assert row.error_message is not None and "healthy ecosystem engagement" in row.error_message
    counters = await assert_consistent(pk)
    assert (counters["pending"], counters["sent"], counters["failed"]) == (1, 1, 0)
    # the same status again (Meta redelivers): about the last round, stale now
    assert (await apply_receipts([limited])).stale == 1
    await assert_consistent(pk)


async def test_a_131049_failure_of_a_completed_campaign_stays_a_failure(api: Api) -> None:
    pk, ids = await prepare(api, sent=1)
    await Campaign.filter(id=pk).update(status=CampaignStatus.COMPLETED)
    report = await apply_receipts([r(ids[0], "failed", T0 + 3, code="131049")])
    assert (report.applied, report.deferred) == (1, 0)
    assert (await Message.get(id=ids[0])).status == "FAILED"  # RETRY_FAILED sends it again
    await assert_consistent(pk)
