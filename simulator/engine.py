"""The simulated account: authentication, rate limit, idempotency, fates, ledger, webhooks.

Independent of HTTP framing so the route stays a thin adapter; the hot path is a few dict
lookups, one seeded generator and one json.dumps (no logging, no validation library).
Several business numbers (simulator/numbers.py): each send is checked against the
token of the number in its path, paced by that number's throughput, recorded under it,
and its statuses carry it. A template send is checked against the number's WABA's
templates (simulator/template_api.py), which `handle_templates` lists. A number with a
limited messaging tier accepts sends to at most its limit of unique recipients per
moving 24 hours of the simulator's clock (simulator/messaging_limit.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from simulator.config import SimulatorConfig
from simulator.fate import LOST, SLOW, Fate, PlannedStatus, decide
from simulator.ledger import Ledger, SendRecord
from simulator.messaging_limit import LIMIT_CODE, TIER_LIMITS, Clock, RecipientWindow
from simulator.numbers import NODE_TYPE, Denial, NumberRegistry, PhoneNumber, Waba, graph_version, requested_fields
from simulator.template_api import GraphParamError, TemplateDesk, list_page
from simulator.webhooks import WebhookDispatcher
from simulator.wire import (
    INVALID_TOKEN,
    MISSING_TOKEN,
    BadRequest,
    SendMessage,
    accepted_body,
    error_body,
    error_info,
    graph_error_body,
    inbound_text_value,
    is_transient,
    no_object_message,
    parse_send,
    pricing_object,
    status_object,
    user_preferences_value,
)

RETRY_AFTER = {"Retry-After": "1"}
#: Meta's code for a marketing message to a user who stopped them (docs/STACK.md)
MARKETING_STOPPED = 131050
MARKETING_CATEGORY = "marketing_messages"
#: HTTP status and Graph code of each refusal of a number (docs/STACK.md)
DENIED = {Denial.MISSING_TOKEN: (400, 104), Denial.INVALID_TOKEN: (401, 190), Denial.NO_OBJECT: (400, 100)}


@dataclass(slots=True)
class Answer:
    """An HTTP answer; an idempotent replay is byte-for-byte the first one."""

    status: int
    body: bytes
    headers: dict[str, str] | None = None
    campaign_id: int | None = None
    #: replayed for its idempotency key; transient errors are not, so a retry is a new attempt
    cacheable: bool = False
    #: the send, when accepted: what the idempotency cache keeps (the ledger holds it
    #: anyway, so a million keys do not also hold a million answer bodies)
    record: SendRecord | None = None
    #: accepted, but the connection drops before the answer's body (the client cannot tell)
    lost: bool = False


def _replay(entry: Answer | SendRecord) -> Answer:
    if isinstance(entry, Answer):
        return entry
    body = accepted_body(entry.to, entry.to.lstrip("+"), entry.wamid)
    return Answer(200, body, None, entry.campaign_id, True, entry)


class ThroughputTier:
    """A number's messages-per-second tier as Meta enforces it: `rate` per second with
    one second of burst; a send beyond it is refused (error 130429), not delayed.
    (The sender's own pacing, which waits instead, is jobs/ratelimit.py's TokenBucket.)"""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def refill(self) -> None:
        self.tokens, self.stamp = self.capacity, time.monotonic()


class Simulator:
    """The Cloud API of one app and its business numbers. `handle_send` answers a send
    request, `handle_lookup` a phone number read; `ledger` is the truth."""

    def __init__(self, config: SimulatorConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        #: the time of the ledger, of status webhooks and of the messaging limit's window
        #: (a test moves it: `POST /_simulator/clock`); throughput and latency keep real time
        self.clock = Clock(clock)
        self.ledger = Ledger()
        self.webhooks = WebhookDispatcher(config, self.ledger)
        self.numbers = NumberRegistry(config.number)
        # phone_number_id -> its throughput (absent: unlimited)
        self._tiers: dict[str, ThroughputTier] = {}
        # phone_number_id -> its recipients in the messaging limit's window (absent: unlimited)
        self._windows: dict[str, RecipientWindow] = {}
        self._add_tier(config.number)
        for number in config.numbers:
            self.register_number(number)
        # key -> the first answer, or a future while its first request is in flight
        self._answers: dict[str, Answer | SendRecord | asyncio.Future[None]] = {}
        # key -> attempts made that were not cached (transient errors, or idempotency off)
        self._attempts: dict[str, int] = {}
        self._trace = itertools.count(1)
        self._pricing = pricing_object(config.pricing_category)
        self._inbound = itertools.count(1)
        self.templates = TemplateDesk(config, self.numbers, self.webhooks)

    def _add_tier(self, number: PhoneNumber) -> None:
        if number.throughput is not None:
            self._tiers[number.phone_number_id] = ThroughputTier(number.throughput)
        limit = TIER_LIMITS[number.messaging_limit_tier]
        if limit is not None:
            self._windows[number.phone_number_id] = RecipientWindow(limit)

    def register_number(self, number: PhoneNumber) -> bool:
        """Serve one more number (True), or the same one again (False); another number
        under a served id raises NumberConflict."""
        created = self.numbers.register(number)
        if created:
            self._add_tier(number)
        return created

    def remove_number(self, phone_number_id: str) -> PhoneNumber | None:
        """Stop serving a number, as when it is deleted on Meta (not the first one)."""
        removed = self.numbers.remove(phone_number_id)
        if removed is not None:
            self._tiers.pop(phone_number_id, None)
            self._windows.pop(phone_number_id, None)
        return removed

    @property
    def webhook_url(self) -> str | None:
        return self.webhooks.url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        self.webhooks.url = url

    async def start(self) -> None:
        await self.webhooks.start()

    async def stop(self) -> None:
        await self.webhooks.stop()

    def reset(self) -> None:
        """Forget everything received: ledger, idempotency keys, attempts, unsent webhooks,
        so a benchmark re-run with reused message ids is sent, not replayed. The numbers
        stay registered (set-up, not traffic); their throughput gets its burst back."""
        self.webhooks.clear()
        self.ledger.reset()
        self._answers = {k: v for k, v in self._answers.items() if isinstance(v, asyncio.Future)}
        self._attempts.clear()
        self.templates.reset()
        for tier in self._tiers.values():
            tier.refill()
        self._windows = {pid: RecipientWindow(w.limit) for pid, w in self._windows.items()}

    def messaging_limit(self, phone_number_id: str) -> dict[str, object] | None:
        """A number's messaging limit now: limit, recipients counted, the most counted at
        once, sends refused, when the oldest stops counting; None: unlimited."""
        window = self._windows.get(phone_number_id)
        return None if window is None else window.to_json(self.clock())

    def _error(
        self,
        code: int,
        campaign_id: int | None = None,
        message: str | None = None,
        details: str | None = None,
        subcode: int | None = None,
    ) -> Answer:
        # fbtrace_id: opaque like Meta's, unique per answer, cheap (errors only).
        digest = hashlib.blake2b(str(next(self._trace)).encode(), digest_size=12).digest()
        trace = "A" + base64.urlsafe_b64encode(digest).decode()
        body = error_body(code, message, details, subcode, trace)
        info = error_info(code)
        headers = RETRY_AFTER if code == 130429 else None
        return Answer(info.http_status, body, headers, campaign_id, cacheable=not info.transient)

    def _graph_error(
        self, status: int, code: int, message: str, error_type: str = "OAuthException", subcode: int | None = None
    ) -> Answer:
        """An answer of the Graph API layer, before WhatsApp: no `error_data`."""
        digest = hashlib.blake2b(str(next(self._trace)).encode(), digest_size=12).digest()
        body = graph_error_body(code, message, error_type, subcode, "A" + base64.urlsafe_b64encode(digest).decode())
        return Answer(status, body, cacheable=True)

    def _denied(self, denial: Denial, object_id: str, method: str) -> Answer:
        """Meta's answer for a request that may not use the object in its path."""
        status, code = DENIED[denial]
        if denial is Denial.MISSING_TOKEN:
            return self._graph_error(status, code, MISSING_TOKEN)
        if denial is Denial.INVALID_TOKEN:
            return self._graph_error(status, code, INVALID_TOKEN)
        # A good token asking for a number it has no right to reads as a missing object.
        return self._graph_error(status, code, no_object_message(method, object_id), "GraphMethodException", 33)

    async def handle_send(
        self, phone_number_id: str, authorization: str | None, idempotency_key: str | None, raw: bytes
    ) -> Answer:
        """Answer `POST /{version}/{phone_number_id}/messages`: the token, then the number
        (that token's?), then the body, then the number's throughput."""
        ledger = self.ledger
        known = self.numbers.get(phone_number_id)
        # Counted under the number in the path when it is one, even if refused.
        scope = known.phone_number_id if known is not None else None
        ledger.record_request(scope)
        number = self.numbers.access(phone_number_id, authorization)
        if not isinstance(number, PhoneNumber):
            ledger.record_error(str(DENIED[number][1]), None, None, False, scope)
            return self._denied(number, phone_number_id, "post")
        pid = number.phone_number_id
        try:
            message = parse_send(raw)
            if message.template is not None:
                message = self.templates.checked(number, message)
        except BadRequest as bad:
            ledger.record_error(str(bad.code), bad.campaign_id, bad.message_id, False, pid)
            return self._error(bad.code, bad.campaign_id, message=bad.message, details=bad.details)
        tier = self._tiers.get(pid)
        if tier is not None and not tier.take():
            ledger.record_rate_limited(pid)
            return self._error(130429, message.campaign_id)
        if idempotency_key and self.config.honour_idempotency:
            return await self._idempotent(number, idempotency_key, message)
        answer, latency = self._apply(number, idempotency_key or _content_key(message), message, cache=False)
        if latency > 0:
            await asyncio.sleep(latency)
        return answer

    def handle_lookup(self, object_id: str, authorization: str | None, version: str, fields: str | None) -> Answer:
        """Answer `GET /{version}/{phone_number_id}?fields=...` as the Graph API does: the
        asked fields and the id, or the first field the node lacks (code 100)."""
        number = self.numbers.access(object_id, authorization)
        if not isinstance(number, PhoneNumber):
            return self._denied(number, object_id, "get")
        node = number.node(graph_version(version, graph_version(self.config.api_version, (26, 0))))
        answer: dict[str, object] = {}
        for name in requested_fields(fields):
            if name not in node:
                # Graph refuses the whole request rather than leave a field out.
                return self._graph_error(
                    400, 100, f"(#100) Tried accessing nonexisting field ({name}) on node type ({NODE_TYPE})"
                )
            answer[name] = node[name]
        answer.setdefault("id", number.phone_number_id)
        return Answer(200, json.dumps(answer, separators=(",", ":")).encode())

    def handle_templates(
        self, waba_id: str, authorization: str | None, params: Mapping[str, str], link: Callable[[dict[str, str]], str]
    ) -> Answer:
        """Answer `GET /{version}/{waba_id}/message_templates`: the token (a number's of that
        WABA), the WABA's hourly budget (80007 beyond it), then a page (template_api.list_page)."""
        waba = self.numbers.access_waba(waba_id, authorization)
        if not isinstance(waba, Waba):
            return self._denied(waba, waba_id, "get")
        if not self.templates.allow_read(waba.id):
            return self._error(80007)
        try:
            page = list_page(waba.templates, params, link)
        except GraphParamError as exc:
            return self._graph_error(400, 100, str(exc))
        return Answer(200, json.dumps(page, separators=(",", ":")).encode())

    def _scope(self, number: PhoneNumber, key: str) -> str:
        """The key a message's fate, wamid and replay hang on: the client's key on the first
        number (so its outcomes are what they always were), prefixed by the number on the
        others (the same key from two numbers is two messages, with two wamids)."""
        pid = number.phone_number_id
        return key if pid == self.numbers.first.phone_number_id else f"{pid}:{key}"

    async def _idempotent(self, number: PhoneNumber, client_key: str, message: SendMessage) -> Answer:
        """Replay the first answer for the key; while the first request is in flight, wait for it."""
        key = self._scope(number, client_key)
        while True:
            entry = self._answers.get(key)
            if entry is None:
                break
            if not isinstance(entry, asyncio.Future):
                self.ledger.record_replay(entry.campaign_id, number.phone_number_id)
                return _replay(entry)
            # Shielded: a waiter cancelled by its client must not cancel the first request.
            await asyncio.shield(entry)
        answer, latency = self._apply(number, client_key, message, cache=True)
        if latency <= 0:
            # Nothing else ran since the lookup: no request can be waiting for this key.
            self._settle(key, answer)
            return answer
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._answers[key] = future
        try:
            await asyncio.sleep(latency)
        finally:
            # Settled even if this request is cancelled: the message was sent all the same,
            # so a retry with this key must get this answer, not a second send.
            if self._answers.get(key) is future:
                del self._answers[key]
                self._settle(key, answer)
            future.set_result(None)
        return answer

    def _settle(self, key: str, answer: Answer) -> None:
        if answer.cacheable:
            self._answers[key] = answer.record or answer
        # else: transient, so the next request with this key is a new attempt

    def _apply(self, number: PhoneNumber, client_key: str, message: SendMessage, cache: bool) -> tuple[Answer, float]:
        """Draw the fate of the next attempt of the key and apply it (ledger, webhooks);
        return the answer and the seconds to wait before giving it.

        Applied before the wait: the message is sent once received, even if the client gives
        up on the answer (an ambiguous timeout on the service's side)."""
        key = self._scope(number, client_key)
        pid = number.phone_number_id
        attempt = self._attempts.get(key, 0)
        fate = decide(self.config, key, attempt, plan=self.webhooks.url is not None)
        window = self._windows.get(pid)
        if fate.error is None and window is not None and not window.admit(message.wa_id, self.clock()):
            # a new recipient beyond the number's messaging limit: refused, never replayed
            # (the same request is accepted once the window rolls)
            self.ledger.record_error(str(LIMIT_CODE), message.campaign_id, message.message_id, False, pid)
            self.ledger.record_limit_refused(pid)
            self._attempts[key] = attempt + 1
            refused = self._error(LIMIT_CODE, message.campaign_id)
            refused.cacheable = False
            return refused, fate.latency_s
        if fate.error is None and self.stopped_marketing(number, message.wa_id):
            fate = self._refused_marketing(fate)
        code = fate.error
        latency = fate.latency_s
        if code is None:
            answer = self._accept(number, client_key, message, fate)
            if fate.answer == LOST:
                answer.lost = True
                self.ledger.record_answer_fault(True, pid)
            elif fate.answer == SLOW:
                latency = self.config.slow_answer_ms / 1000.0
                self.ledger.record_answer_fault(False, pid)
        else:
            transient = is_transient(code)
            self.ledger.record_error(code, message.campaign_id, message.message_id, transient, pid)
            answer = self._error(int(code), message.campaign_id)
        if not (cache and answer.cacheable):
            # Not replayed, so the key can come again: its next attempt draws a new fate.
            self._attempts[key] = attempt + 1
        return answer, latency

    def _accept(self, number: PhoneNumber, key: str, message: SendMessage, fate: Fate) -> Answer:
        now = self.clock()
        record = SendRecord(
            key, message.campaign_id, message.message_id, message.to, fate.wamid, now, number.phone_number_id
        )
        if message.template is not None:
            # What went out, for tests to read back (GET /_simulator/ledger/messages)
            record.template_name, record.template_language = message.template.name, message.template.language
            record.body = message.rendered
        assert fate.final is not None
        self.ledger.record_accepted(record, fate.final, fate.later_failure)
        if fate.statuses:
            self._schedule(number, message, fate, now)
        return Answer(
            200,
            accepted_body(message.to, message.wa_id, fate.wamid),
            None,
            message.campaign_id,
            cacheable=True,
            record=record,
        )

    def _schedule(self, number: PhoneNumber, message: SendMessage, fate: Fate, now: float) -> None:
        start = time.monotonic()
        self.webhooks.schedule_many(
            [
                (
                    start + planned.post_s,
                    status_object(
                        fate.wamid,
                        planned.status,
                        int(now + planned.event_s),
                        message.wa_id,
                        message.callback_data,
                        planned.error_code,
                        self._pricing,
                    ),
                )
                for planned in fate.statuses
            ],
            number,
        )
        kinds = [planned.status for planned in fate.statuses if not planned.duplicate]
        self.ledger.record_scheduled(
            message.campaign_id, kinds, fate.duplicated, fate.out_of_order, number.phone_number_id
        )

    # ------------------------------------------------------------ people

    def stopped_marketing(self, number: PhoneNumber, wa_id: str) -> bool:
        """Whether a marketing message from `number` to `wa_id` is refused: the user
        stopped marketing messages from its business (only marketing ones are)."""
        stopped = self.ledger.opted_out.get(number.waba_id) or set()
        return wa_id in stopped and self.config.pricing_category == "marketing"

    def _refused_marketing(self, fate: Fate) -> Fate:
        """The fate of a marketing message to a user who stopped them: as Meta does it,
        accepted and then a `failed` status 131050 (never billed), or answered 131050."""
        self.ledger.refused_opted_out += 1
        if self.config.opted_out_answer == "error":
            return replace(fate, error=str(MARKETING_STOPPED), statuses=(), final=None)
        when = fate.statuses[0].post_s if fate.statuses else 0.0
        failed = (PlannedStatus(when, when, "failed", MARKETING_STOPPED),) if fate.statuses else ()
        return replace(
            fate,
            statuses=failed,
            final="failed",
            later_failure=str(MARKETING_STOPPED),
            duplicated=False,
            out_of_order=False,
        )

    def set_marketing_preference(
        self, number: PhoneNumber, wa_id: str, value: str, detail: str | None = None, post: bool = True
    ) -> bool:
        """A user stops (`stop`) or resumes (`resume`) marketing messages from `number`'s
        business in WhatsApp: the ledger says so at once (sends to them are refused), and
        with `post` a `user_preferences` webhook tells the receiver. Whether one is posted."""
        stopped = self.ledger.opted_out.setdefault(number.waba_id, set())
        if value == "stop":
            stopped.add(wa_id)
        else:
            stopped.discard(wa_id)
        if not post:
            return False
        self.ledger.preference_changes += 1
        change = user_preferences_value(wa_id, value, int(self.clock()), MARKETING_CATEGORY, detail)
        return self.webhooks.post_change(number, "user_preferences", change)

    def post_inbound_text(self, number: PhoneNumber, wa_id: str, body: str, name: str = "Simulated User") -> str | None:
        """A user writes `body` to `number`: a `messages` webhook carries it. Its message
        id, or None when no receiver is set."""
        digest = hashlib.blake2b(f"{self.config.seed}:in:{next(self._inbound)}:{wa_id}".encode(), digest_size=27)
        message_id = "wamid." + base64.b64encode(digest.digest()).decode()
        value = inbound_text_value(wa_id, name, message_id, int(self.clock()), body)
        if not self.webhooks.post_change(number, "messages", value):
            return None
        self.ledger.inbound_messages += 1
        return message_id


def _content_key(message: SendMessage) -> str:
    """The key of a request without Idempotency-Key: its recipient and content."""
    digest = hashlib.blake2b(f"{message.to}\x1e{message.content}".encode(), digest_size=16).hexdigest()
    return "body-" + digest
