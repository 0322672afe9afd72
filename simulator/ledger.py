"""The truth: what the simulator received, accepted, refused and reported back.

Tests and benchmarks compare the service's own numbers with this. Updated on the hot
path, so it is plain counters and dicts; the JSON view is built only when asked.
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

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "campaign_id": self.campaign_id,
            "message_id": self.message_id,
            "to": self.to,
            "wamid": self.wamid,
            "at": self.at,
        }


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

    def answer_quantiles(self) -> dict[str, float | None]:
        ordered = sorted(self.answer_times)
        if not ordered:
            return {"p50_ms": None, "p99_ms": None}
        pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)  # noqa: E731
        return {"p50_ms": pick(0.50), "p99_ms": pick(0.99)}


class Ledger:
    """Counters for the whole simulator and per campaign; `to_json()` is the HTTP view."""

    def __init__(self) -> None:
        #: statuses waiting or in flight, kept by the webhook dispatcher. Not cleared by
        #: reset(): POSTs in flight then still settle their count.
        self.webhooks_pending = 0
        self.reset()

    def reset(self) -> None:
        self.started_at = time.time()
        self.requests = 0
        self.accepted = 0
        self.replays = 0
        self.rate_limited = 0
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

    def record_accepted(self, record: SendRecord, final: str, later_failure: str | None) -> None:
        """An accepted send. A message id or phone accepted before in the same campaign,
        under another key or request, is a duplicate send: the service must never cause one."""
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

    def record_error(self, code: str, campaign_id: int | None, message_id: int | None, transient: bool) -> None:
        self.immediate_errors[code] += 1
        if campaign_id is not None:
            c = self.campaign(campaign_id)
            c.immediate_errors[code] += 1
            if not transient and message_id is not None and message_id not in c.final_by_message:
                c.rejected[message_id] = code

    def record_replay(self, campaign_id: int | None) -> None:
        self.replays += 1
        if campaign_id is not None:
            self.campaign(campaign_id).replays += 1

    def record_scheduled(self, campaign_id: int | None, kinds: list[str], duplicated: bool, out_of_order: bool) -> None:
        """The statuses of one message, once each (a duplicate copy counts in `duplicates`)."""
        self.statuses_scheduled.update(kinds)
        self.webhooks.duplicates += duplicated
        self.webhooks.out_of_order += out_of_order
        if campaign_id is not None:
            self.campaign(campaign_id).statuses_scheduled.update(kinds)

    def sends(self, campaign_id: int | None = None) -> list[SendRecord]:
        """Accepted sends of one campaign, or all of them in campaign order."""
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
            },
            "campaigns": {str(cid): c.to_json() for cid, c in sorted(self.campaigns.items())},
        }
