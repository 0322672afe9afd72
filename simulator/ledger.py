"""The truth: what the simulator received, accepted, refused and reported back.

Tests and benchmarks compare the service's own numbers with this. Updated on the hot
path, so it is plain counters and dicts; the JSON view is built only when asked.
Each business phone number has a ledger of its own too (`Ledger.of`), kept by the same
calls, so one number's truth reads apart from the others' (`/ledger?phone_number_id=`).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

STATUS_KINDS = ("sent", "delivered", "read", "failed")


@dataclass(slots=True)
class SendRecord:
    """One accepted send (a message that would reach a phone)."""

    key: str
    campaign_id: int | None
    message_id: int | None
    to: str
    wamid: str
    at: float  # unix seconds
    #: the business number that sent it (None: a record built without one, in tests)
    phone_number_id: str | None = None
    #: a template message's name, language and body as the recipient reads it
    template_name: str | None = None
    template_language: str | None = None
    body: str | None = None

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "key": self.key,
            "campaign_id": self.campaign_id,
            "message_id": self.message_id,
            "to": self.to,
            "wamid": self.wamid,
            "at": self.at,
            "phone_number_id": self.phone_number_id,
        }
        if self.template_name is not None:
            item["template"] = {"name": self.template_name, "language": self.template_language, "body": self.body}
        return item


@dataclass(slots=True)
class CampaignLedger:
    """Per campaign, from `biz_opaque_callback_data` "c<campaign>:m<message>"."""

    accepted: int = 0
    replays: int = 0
    #: message id -> strongest status its (last) accepted send reaches
    final_by_message: dict[int, str] = field(default_factory=dict)
    #: message ids refused with a non-transient error and never accepted
    rejected: dict[int, str] = field(default_factory=dict)
    #: recipients as wa_ids (digits, no "+")
    phones: set[str] = field(default_factory=set)
    duplicate_sends: int = 0
    duplicate_message_ids: int = 0
    duplicate_phones: int = 0
    immediate_errors: Counter[str] = field(default_factory=Counter)
    later_failures: Counter[str] = field(default_factory=Counter)
    statuses_scheduled: Counter[str] = field(default_factory=Counter)
    sends: list[SendRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        final = Counter(self.final_by_message.values())
        return {
            "accepted": self.accepted,
            "replays": self.replays,
            "distinct_message_ids": len(self.final_by_message),
            "distinct_phones": len(self.phones),
            "duplicate_sends": self.duplicate_sends,
            "duplicate_message_ids": self.duplicate_message_ids,
            "duplicate_phones": self.duplicate_phones,
            "immediate_errors": dict(self.immediate_errors),
            "later_failures": dict(self.later_failures),
            "statuses_scheduled": {kind: self.statuses_scheduled[kind] for kind in STATUS_KINDS},
            # What each message ends as, if every webhook arrives: the service's stats
            # should converge to this. `rejected`: refused at once, never accepted.
            "final": {kind: final[kind] for kind in STATUS_KINDS} | {"rejected": len(self.rejected)},
        }


@dataclass(slots=True)
class WebhookCounters:
    posts_sent: int = 0  # POSTs answered 2xx
    posts_failed: int = 0  # POSTs dropped after their last attempt
    retries: int = 0
    statuses_sent: int = 0
    statuses_dropped: int = 0
    duplicates: int = 0  # statuses scheduled twice on purpose
    out_of_order: int = 0  # read scheduled before delivered on purpose
    #: statuses answered 2xx, by kind (sent | delivered | read | failed)
    sent_by_kind: Counter[str] = field(default_factory=Counter)
    #: seconds each of the latest POSTs took to be answered (for the receiver's p50/p99)
    answer_times: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    #: seconds each of the latest first POSTs started after its first status was due: how
    #: far the simulator itself fell behind (Meta posts on time), and the most it ever did
    late_times: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    late_max: float = 0.0

    def answer_quantiles(self) -> dict[str, float | None]:
        return _quantiles_ms(self.answer_times)

    def late_quantiles(self) -> dict[str, float | None]:
        return _quantiles_ms(self.late_times) | {"max_ms": round(self.late_max * 1000, 2)}


def _quantiles_ms(times: deque[float]) -> dict[str, float | None]:
    ordered = sorted(times)
    if not ordered:
        return {"p50_ms": None, "p99_ms": None}
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)  # noqa: E731
    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99)}


class Ledger:
    """Counters for the whole simulator, per campaign and per number; `to_json()` is the
    HTTP view. The `number` arguments name the business number a record belongs to: it
    is counted here and in that number's own ledger (`of`)."""

    def __init__(self) -> None:
        #: statuses waiting or in flight, kept by the webhook dispatcher. Not cleared by
        #: reset(): POSTs in flight then still settle their count.
        self.webhooks_pending = 0
        #: phone_number_id -> that number's ledger (kept, and reset in place, by reset():
        #: its pending statuses still settle)
        self.numbers: dict[str, Ledger] = {}
        self.reset()

    def of(self, phone_number_id: str) -> Ledger:
        """The ledger of one business number (made at its first record)."""
        found = self.numbers.get(phone_number_id)
        if found is None:
            found = self.numbers[phone_number_id] = Ledger()
        return found

    def reset(self) -> None:
        for child in self.numbers.values():
            child.reset()
        #: per business account (WABA), the wa_ids that stopped its marketing messages (a
        #: `user_preferences` stop): refused with 131050 until they resume
        self.opted_out: dict[str, set[str]] = {}
        #: marketing messages refused for it
        self.refused_opted_out = 0
        #: webhooks of people (inbound messages, preference changes) scheduled on request
        self.inbound_messages = 0
        self.preference_changes = 0
        self.started_at = time.time()
        self.requests = 0
        self.accepted = 0
        self.replays = 0
        self.rate_limited = 0
        #: sends refused for the messaging limit (also counted in immediate_errors)
        self.limit_refused = 0
        #: accepted sends whose answer was lost on purpose, or given after the client's timeout
        self.answers_lost = 0
        self.answers_slow = 0
        self.immediate_errors: Counter[str] = Counter()
        self.later_failures: Counter[str] = Counter()
        self.statuses_scheduled: Counter[str] = Counter()
        self.webhooks = WebhookCounters()
        self.campaigns: dict[int, CampaignLedger] = {}
        #: accepted sends without campaign callback data
        self.other_sends: list[SendRecord] = []

    def campaign(self, campaign_id: int) -> CampaignLedger:
        found = self.campaigns.get(campaign_id)
        if found is None:
            found = self.campaigns[campaign_id] = CampaignLedger()
        return found

    def record_request(self, number: str | None = None) -> None:
        """A send request received (for `number` when it names a registered one)."""
        self.requests += 1
        if number is not None:
            self.of(number).requests += 1

    def record_rate_limited(self, number: str | None = None) -> None:
        self.rate_limited += 1
        if number is not None:
            self.of(number).rate_limited += 1

    def record_limit_refused(self, number: str | None = None) -> None:
        """A send to a new recipient refused for the number's messaging limit (131048)."""
        self.limit_refused += 1
        if number is not None:
            self.of(number).limit_refused += 1

    def record_answer_fault(self, lost: bool, number: str | None = None) -> None:
        """An accepted send whose answer was lost (True) or given too late (False)."""
        for ledger in (self,) if number is None else (self, self.of(number)):
            if lost:
                ledger.answers_lost += 1
            else:
                ledger.answers_slow += 1

    def record_accepted(self, record: SendRecord, final: str, later_failure: str | None) -> None:
        """An accepted send. A message id or phone accepted before in the same campaign,
        under another key or request, is a duplicate send: the service must never cause one.
        Counted in the ledger of `record.phone_number_id` too, when it has one."""
        if record.phone_number_id is not None:
            self.of(record.phone_number_id)._accepted(record, final, later_failure)
        self._accepted(record, final, later_failure)

    def _accepted(self, record: SendRecord, final: str, later_failure: str | None) -> None:
        self.accepted += 1
        if later_failure is not None:
            self.later_failures[later_failure] += 1
        if record.campaign_id is None:
            self.other_sends.append(record)
            return
        c = self.campaign(record.campaign_id)
        c.accepted += 1
        c.sends.append(record)
        if later_failure is not None:
            c.later_failures[later_failure] += 1
        seen_id = record.message_id is not None and record.message_id in c.final_by_message
        # Keyed on the wa_id: Meta takes `to` with or without "+", and both reach one phone.
        phone = record.to.lstrip("+")
        seen_phone = phone in c.phones
        if seen_id or seen_phone:
            c.duplicate_sends += 1
            c.duplicate_message_ids += seen_id
            c.duplicate_phones += seen_phone
        c.phones.add(phone)
        if record.message_id is not None:
            c.final_by_message[record.message_id] = final
            c.rejected.pop(record.message_id, None)

    def record_error(
        self, code: str, campaign_id: int | None, message_id: int | None, transient: bool, number: str | None = None
    ) -> None:
        if number is not None:
            self.of(number).record_error(code, campaign_id, message_id, transient)
        self.immediate_errors[code] += 1
        if campaign_id is not None:
            c = self.campaign(campaign_id)
            c.immediate_errors[code] += 1
            if not transient and message_id is not None and message_id not in c.final_by_message:
                c.rejected[message_id] = code

    def record_replay(self, campaign_id: int | None, number: str | None = None) -> None:
        if number is not None:
            self.of(number).record_replay(campaign_id)
        self.replays += 1
        if campaign_id is not None:
            self.campaign(campaign_id).replays += 1

    def record_scheduled(
        self, campaign_id: int | None, kinds: list[str], duplicated: bool, out_of_order: bool, number: str | None = None
    ) -> None:
        """The statuses of one message, once each (a duplicate copy counts in `duplicates`)."""
        if number is not None:
            self.of(number).record_scheduled(campaign_id, kinds, duplicated, out_of_order)
        self.statuses_scheduled.update(kinds)
        self.webhooks.duplicates += duplicated
        self.webhooks.out_of_order += out_of_order
        if campaign_id is not None:
            self.campaign(campaign_id).statuses_scheduled.update(kinds)

    def sends(self, campaign_id: int | None = None, phone_number_id: str | None = None) -> list[SendRecord]:
        """Accepted sends of one campaign, or all of them in campaign order; of one
        business number only when it is given."""
        if phone_number_id is not None:
            found_number = self.numbers.get(phone_number_id)
            return found_number.sends(campaign_id) if found_number else []
        if campaign_id is not None:
            found = self.campaigns.get(campaign_id)
            return list(found.sends) if found else []
        every = [r for c in self.campaigns.values() for r in c.sends]
        return every + self.other_sends

    def to_json(self) -> dict[str, Any]:
        w = self.webhooks
        return {
            "started_at": self.started_at,
            "requests": self.requests,
            "accepted": self.accepted,
            "replays": self.replays,
            "rate_limited": self.rate_limited,
            "limit_refused": self.limit_refused,
            "answers_lost": self.answers_lost,
            "answers_slow": self.answers_slow,
            "immediate_errors": dict(self.immediate_errors),
            "later_failures": dict(self.later_failures),
            "statuses_scheduled": {kind: self.statuses_scheduled[kind] for kind in STATUS_KINDS},
            "webhooks": {
                "sent": w.posts_sent,
                "failed": w.posts_failed,
                "retries": w.retries,
                "statuses_sent": w.statuses_sent,
                "statuses_dropped": w.statuses_dropped,
                "statuses_pending": self.webhooks_pending,
                "duplicates": w.duplicates,
                "out_of_order": w.out_of_order,
                "sent_by_kind": {kind: w.sent_by_kind[kind] for kind in STATUS_KINDS},
                "answers": w.answer_quantiles(),
                "late": w.late_quantiles(),
            },
            "campaigns": {str(cid): c.to_json() for cid, c in sorted(self.campaigns.items())},
            "opted_out": {waba: sorted(ids) for waba, ids in sorted(self.opted_out.items()) if ids},
            "refused_opted_out": self.refused_opted_out,
            "inbound_messages": self.inbound_messages,
            "preference_changes": self.preference_changes,
            # Per business number, in brief (the whole view: `?phone_number_id=`)
            "numbers": {
                pid: {"requests": n.requests, "accepted": n.accepted, "rate_limited": n.rate_limited}
                for pid, n in sorted(self.numbers.items())
            },
        }
