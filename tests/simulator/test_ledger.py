"""simulator/ledger.py, the truth: what was accepted, refused, replayed and scheduled,
per campaign and in all, and its JSON view. Direct calls, plus the accounting as a
client reads it over HTTP."""

from __future__ import annotations

from simulator import Ledger, SimulatorConfig
from simulator.ledger import STATUS_KINDS, SendRecord
from tests.simulator.conftest import phone, running, text


def record(message_id: int | None, to: str, campaign_id: int | None = 4, key: str | None = None) -> SendRecord:
    return SendRecord(key or f"msg-{message_id}", campaign_id, message_id, to, f"wamid.{key or message_id}", 1.7e9)


# --- accepted sends --------------------------------------------------------------------


async def test_ledger_per_campaign_counts_duplicate_sends() -> None:
    async with running(SimulatorConfig(delivered_probability=1.0, read_probability=0.0)) as sim:
        for i in range(5):
            await sim.send(text(phone(i), callback=f"c4:m{i}"), key=f"msg-{i}")
        # The same message under another key: a true duplicate send.
        await sim.send(text(phone(0), callback="c4:m0"), key="resend-0")
        # Another campaign with the same phone is no duplicate of campaign 4.
        await sim.send(text(phone(0), callback="c5:m100"), key="msg-100")
        ledger = await sim.ledger()
        async with sim.http.get(f"{sim.url}/_simulator/ledger/messages", params={"campaign": "4"}) as r:
            listing = await r.json()
        page = {"campaign": "4", "offset": "1", "limit": "2"}
        async with sim.http.get(f"{sim.url}/_simulator/ledger/messages", params=page) as r:
            paged = await r.json()
    four = ledger["campaigns"]["4"]
    assert four["accepted"] == 6
    assert four["distinct_message_ids"] == 5 and four["distinct_phones"] == 5
    assert four["duplicate_sends"] == 1
    assert four["duplicate_message_ids"] == 1 and four["duplicate_phones"] == 1
    assert four["final"] == {"sent": 0, "delivered": 5, "read": 0, "failed": 0, "rejected": 0}
    assert ledger["campaigns"]["5"]["duplicate_sends"] == 0
    assert listing["count"] == 6
    assert [m["key"] for m in listing["messages"]] == ["msg-0", "msg-1", "msg-2", "msg-3", "msg-4", "resend-0"]
    assert [m["key"] for m in paged["messages"]] == ["msg-1", "msg-2"] and paged["count"] == 6
    first = listing["messages"][0]
    assert first["message_id"] == 0 and first["to"] == phone(0) and first["wamid"].startswith("wamid.")
    assert first["at"] > 1e9


def test_a_message_id_sent_again_to_another_phone_is_a_duplicate_message_id_only() -> None:
    ledger = Ledger()
    ledger.record_accepted(record(1, phone(1)), "delivered", None)
    ledger.record_accepted(record(1, phone(2), key="again"), "read", None)
    c = ledger.campaign(4)
    assert (c.duplicate_sends, c.duplicate_message_ids, c.duplicate_phones) == (1, 1, 0)
    assert c.final_by_message == {1: "read"}  # the last accepted send's fate counts


def test_another_message_to_a_phone_already_sent_to_is_a_duplicate_phone_only() -> None:
    ledger = Ledger()
    ledger.record_accepted(record(1, phone(1)), "sent", None)
    ledger.record_accepted(record(2, phone(1)), "sent", None)
    c = ledger.campaign(4)
    assert (c.duplicate_sends, c.duplicate_message_ids, c.duplicate_phones) == (1, 0, 1)
    assert c.to_json()["distinct_phones"] == 1 and c.to_json()["distinct_message_ids"] == 2


async def test_one_recipient_written_with_and_without_plus_is_one_phone() -> None:
    """Meta takes `to` with or without "+" and answers the same `wa_id`: two messages of a
    campaign to "+14155550100" and "14155550100" reach one person, a duplicate send."""
    async with running() as sim:
        first = await sim.send(text("+14155550100", callback="c4:m1"), key="msg-1")
        second = await sim.send(text("14155550100", callback="c4:m2"), key="msg-2")
        ledger = await sim.ledger()
    assert first.body["contacts"][0]["wa_id"] == second.body["contacts"][0]["wa_id"]
    four = ledger["campaigns"]["4"]
    assert four["distinct_phones"] == 1
    assert four["duplicate_phones"] == 1 and four["duplicate_sends"] == 1


def test_a_send_without_campaign_data_is_counted_but_belongs_to_no_campaign() -> None:
    ledger = Ledger()
    ledger.record_accepted(record(None, phone(1), campaign_id=None, key="test-send"), "failed", "131026")
    assert ledger.accepted == 1 and ledger.later_failures == {"131026": 1}
    assert ledger.campaigns == {} and [r.key for r in ledger.other_sends] == ["test-send"]


def test_later_failures_are_counted_in_all_and_per_campaign() -> None:
    ledger = Ledger()
    ledger.record_accepted(record(1, phone(1)), "failed", "131026")
    ledger.record_accepted(record(2, phone(2), campaign_id=5), "failed", "131026")
    ledger.record_accepted(record(3, phone(3)), "read", None)
    assert ledger.later_failures == {"131026": 2}
    assert ledger.campaign(4).later_failures == {"131026": 1}
    assert ledger.campaign(4).to_json()["final"] == {"sent": 0, "delivered": 0, "read": 1, "failed": 1, "rejected": 0}


# --- refusals and replays --------------------------------------------------------------


def test_a_permanent_refusal_of_a_message_never_accepted_makes_it_rejected() -> None:
    ledger = Ledger()
    ledger.record_error("131026", 4, 1, transient=False)
    ledger.record_error("131056", 4, 2, transient=True)
    c = ledger.campaign(4)
    assert c.rejected == {1: "131026"}
    assert ledger.immediate_errors == {"131026": 1, "131056": 1} == c.immediate_errors
    assert c.to_json()["final"]["rejected"] == 1


def test_a_rejected_message_accepted_later_is_no_longer_rejected() -> None:
    ledger = Ledger()
    ledger.record_error("131026", 4, 1, transient=False)
    ledger.record_accepted(record(1, phone(1)), "delivered", None)
    assert ledger.campaign(4).rejected == {}


def test_a_refusal_after_acceptance_does_not_make_a_message_rejected() -> None:
    ledger = Ledger()
    ledger.record_accepted(record(1, phone(1)), "delivered", None)
    ledger.record_error("131026", 4, 1, transient=False)
    c = ledger.campaign(4)
    assert c.rejected == {} and c.final_by_message == {1: "delivered"}


def test_a_refusal_without_campaign_is_counted_in_all_only() -> None:
    ledger = Ledger()
    ledger.record_error("190", None, None, transient=False)
    assert ledger.immediate_errors == {"190": 1} and ledger.campaigns == {}


def test_replays_are_counted_in_all_and_per_campaign() -> None:
    ledger = Ledger()
    ledger.record_replay(4)
    ledger.record_replay(None)
    assert ledger.replays == 2 and ledger.campaign(4).replays == 1


# --- scheduled statuses ----------------------------------------------------------------


def test_scheduled_statuses_are_counted_once_each_with_duplicates_and_reorders_apart() -> None:
    ledger = Ledger()
    ledger.record_scheduled(4, ["sent", "delivered", "read"], duplicated=True, out_of_order=True)
    ledger.record_scheduled(None, ["sent"], duplicated=False, out_of_order=False)
    assert ledger.statuses_scheduled == {"sent": 2, "delivered": 1, "read": 1}
    assert ledger.campaign(4).statuses_scheduled == {"sent": 1, "delivered": 1, "read": 1}
    assert (ledger.webhooks.duplicates, ledger.webhooks.out_of_order) == (1, 1)


# --- reading it ------------------------------------------------------------------------


def test_sends_lists_one_campaign_or_every_campaign_then_the_others() -> None:
    ledger = Ledger()
    ledger.record_accepted(record(1, phone(1)), "sent", None)
    ledger.record_accepted(record(None, phone(9), campaign_id=None, key="test-send"), "sent", None)
    ledger.record_accepted(record(2, phone(2), campaign_id=5), "sent", None)
    ledger.record_accepted(record(3, phone(3)), "sent", None)
    assert [r.key for r in ledger.sends(4)] == ["msg-1", "msg-3"]
    assert [r.key for r in ledger.sends()] == ["msg-1", "msg-3", "msg-2", "test-send"]
    assert ledger.sends(99) == []
    ledger.sends(4).clear()  # a copy
    assert len(ledger.sends(4)) == 2


def test_a_send_record_reads_as_json() -> None:
    assert record(1, phone(1)).to_json() == {
        "key": "msg-1",
        "campaign_id": 4,
        "message_id": 1,
        "to": phone(1),
        "wamid": "wamid.1",
        "at": 1.7e9,
        "phone_number_id": None,
    }


def test_a_template_send_record_also_says_what_the_recipient_read() -> None:
    sent = record(1, phone(1))
    sent.template_name, sent.template_language, sent.body = "spring_sale", "en_US", "Hi Ada"
    assert sent.to_json()["template"] == {"name": "spring_sale", "language": "en_US", "body": "Hi Ada"}


def test_webhook_answer_quantiles_are_in_milliseconds_and_none_before_any_answer() -> None:
    ledger = Ledger()
    assert ledger.webhooks.answer_quantiles() == {"p50_ms": None, "p99_ms": None}
    ledger.webhooks.answer_times.extend(i / 1000 for i in range(1, 101))  # 1 ms .. 100 ms
    assert ledger.webhooks.answer_quantiles() == {"p50_ms": 51.0, "p99_ms": 100.0}


def test_the_json_view_names_every_status_kind_and_sorts_campaigns_by_id() -> None:
    ledger = Ledger()
    ledger.record_accepted(record(1, phone(1), campaign_id=12), "sent", None)
    ledger.record_accepted(record(1, phone(1), campaign_id=3), "sent", None)
    view = ledger.to_json()
    assert list(view["campaigns"]) == ["3", "12"]
    assert view["statuses_scheduled"] == dict.fromkeys(STATUS_KINDS, 0)
    assert view["webhooks"]["sent_by_kind"] == dict.fromkeys(STATUS_KINDS, 0)
    assert view["campaigns"]["3"]["statuses_scheduled"] == dict.fromkeys(STATUS_KINDS, 0)
    assert set(view["webhooks"]) == {
        "sent",
        "failed",
        "retries",
        "statuses_sent",
        "statuses_dropped",
        "statuses_pending",
        "duplicates",
        "out_of_order",
        "sent_by_kind",
        "answers",
        "late",
    }


def test_a_record_of_a_number_counts_in_all_and_in_that_numbers_own_ledger() -> None:
    ledger = Ledger()
    sent = SendRecord("msg-1", 4, 1, phone(1), "wamid.1", 1.7e9, "7")
    ledger.record_request("7")
    ledger.record_request(None)  # a request to no number of this simulator
    ledger.record_accepted(sent, "delivered", None)
    ledger.record_error("131026", 4, 2, transient=False, number="7")
    ledger.record_rate_limited("8")
    ledger.record_answer_fault(True, "7")
    ledger.record_replay(4, "7")
    ledger.record_scheduled(4, ["sent"], duplicated=False, out_of_order=False, number="7")
    seven = ledger.of("7")
    assert (ledger.requests, seven.requests) == (2, 1)
    assert ledger.accepted == seven.accepted == 1 and seven.campaign(4).final_by_message == {1: "delivered"}
    assert seven.immediate_errors == {"131026": 1} and seven.campaign(4).rejected == {2: "131026"}
    assert (ledger.rate_limited, seven.rate_limited, ledger.of("8").rate_limited) == (1, 0, 1)
    assert ledger.answers_lost == seven.answers_lost == 1 and seven.replays == 1
    assert seven.statuses_scheduled == {"sent": 1}
    assert ledger.sends(phone_number_id="7") == [sent] and ledger.sends(phone_number_id="9") == []
    assert ledger.to_json()["numbers"] == {
        "7": {"requests": 1, "accepted": 1, "rate_limited": 0},
        "8": {"requests": 0, "accepted": 0, "rate_limited": 1},
    }
    seven.webhooks_pending = 3
    ledger.reset()
    # kept and reset in place: statuses in flight still settle into it
    assert ledger.of("7") is seven and seven.accepted == 0 and seven.webhooks_pending == 3


def test_reset_forgets_everything_but_the_statuses_still_pending() -> None:
    ledger = Ledger()
    before = ledger.started_at
    ledger.requests = 3
    ledger.rate_limited = ledger.answers_lost = ledger.answers_slow = 1
    ledger.record_accepted(record(1, phone(1)), "failed", "131026")
    ledger.record_error("131047", 4, 2, transient=False)
    ledger.record_replay(4)
    ledger.record_scheduled(4, ["sent"], duplicated=True, out_of_order=False)
    ledger.webhooks_pending = 2
    ledger.reset()
    fresh = Ledger()
    fresh.webhooks_pending = 2
    assert {k: v for k, v in ledger.to_json().items() if k != "started_at"} == {
        k: v for k, v in fresh.to_json().items() if k != "started_at"
    }
    assert ledger.started_at >= before and ledger.other_sends == []
