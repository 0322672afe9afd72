"""The simulated account: authentication, rate limit, idempotency, fates, ledger, webhooks.

Independent of HTTP framing so the route stays a thin adapter; the hot path is a few dict
lookups, one seeded generator and one json.dumps (no logging, no validation library).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import time
from dataclasses import dataclass

from simulator.config import SimulatorConfig
from simulator.fate import LOST, SLOW, Fate, decide
from simulator.ledger import Ledger, SendRecord
from simulator.webhooks import WebhookDispatcher
from simulator.wire import (
    BadRequest,
    SendMessage,
    accepted_body,
    error_body,
    error_info,
    is_transient,
    parse_send,
    status_object,
)

RETRY_AFTER = {"Retry-After": "1"}


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
    """One business phone number. `handle_send` answers a send request; `ledger` is the truth."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.ledger = Ledger()
        self.webhooks = WebhookDispatcher(config, self.ledger)
        self._authorization = f"Bearer {config.access_token}"
        # key -> the first answer, or a future while its first request is in flight
        self._answers: dict[str, Answer | SendRecord | asyncio.Future[None]] = {}
        # key -> attempts made that were not cached (transient errors, or idempotency off)
        self._attempts: dict[str, int] = {}
        rate = config.rate_limit_per_second
        self._tier = ThroughputTier(rate) if rate is not None else None
        self._trace = itertools.count(1)

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
        so a benchmark re-run with reused message ids is sent, not replayed."""
        self.webhooks.clear()
        self.ledger.reset()
        self._answers = {k: v for k, v in self._answers.items() if isinstance(v, asyncio.Future)}
        self._attempts.clear()
        if self._tier is not None:
            self._tier.refill()

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

    async def handle_send(
        self, phone_number_id: str, authorization: str | None, idempotency_key: str | None, raw: bytes
    ) -> Answer:
        """Answer `POST /{version}/{phone_number_id}/messages`."""
        ledger = self.ledger
        ledger.requests += 1
        if authorization != self._authorization:
            ledger.record_error("190", None, None, False)
            return self._error(190, message="Invalid OAuth access token - Cannot parse access token")
        if phone_number_id != self.config.phone_number_id:
            ledger.record_error("100", None, None, False)
            return self._error(
                100,
                message=f"Unsupported post request. Object with ID '{phone_number_id}' does not exist, "
                "cannot be loaded due to missing permissions, or does not support this operation.",
                details=f"Unknown phone number id {phone_number_id}.",
                subcode=33,
            )
        try:
            message = parse_send(raw)
        except BadRequest as bad:
            ledger.record_error(str(bad.code), bad.campaign_id, bad.message_id, False)
            return self._error(bad.code, bad.campaign_id, message=bad.message, details=bad.details)
        if self._tier is not None and not self._tier.take():
            ledger.rate_limited += 1
            return self._error(130429, message.campaign_id)
        if idempotency_key and self.config.honour_idempotency:
            return await self._idempotent(idempotency_key, message)
        answer, latency = self._apply(idempotency_key or _content_key(message), message, cache=False)
        if latency > 0:
            await asyncio.sleep(latency)
        return answer

    async def _idempotent(self, key: str, message: SendMessage) -> Answer:
        """Replay the first answer for `key`; while the first request is in flight, wait for it."""
        while True:
            entry = self._answers.get(key)
            if entry is None:
                break
            if not isinstance(entry, asyncio.Future):
                self.ledger.record_replay(entry.campaign_id)
                return _replay(entry)
            # Shielded: a waiter cancelled by its client must not cancel the first request.
            await asyncio.shield(entry)
        answer, latency = self._apply(key, message, cache=True)
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

    def _apply(self, key: str, message: SendMessage, cache: bool) -> tuple[Answer, float]:
        """Draw the fate of the next attempt of `key` and apply it (ledger, webhooks); return
        the answer and the seconds to wait before giving it.

        Applied before the wait: the message is sent once received, even if the client gives
        up on the answer (an ambiguous timeout on the service's side)."""
        attempt = self._attempts.get(key, 0)
        fate = decide(self.config, key, attempt, plan=self.webhooks.url is not None)
        code = fate.error
        latency = fate.latency_s
        if code is None:
            answer = self._accept(key, message, fate)
            if fate.answer == LOST:
                answer.lost = True
                self.ledger.answers_lost += 1
            elif fate.answer == SLOW:
                latency = self.config.slow_answer_ms / 1000.0
                self.ledger.answers_slow += 1
        else:
            transient = is_transient(code)
            self.ledger.record_error(code, message.campaign_id, message.message_id, transient)
            answer = self._error(int(code), message.campaign_id)
        if not (cache and answer.cacheable):
            # Not replayed, so the key can come again: its next attempt draws a new fate.
            self._attempts[key] = attempt + 1
        return answer, latency

    def _accept(self, key: str, message: SendMessage, fate: Fate) -> Answer:
        now = time.time()
        record = SendRecord(key, message.campaign_id, message.message_id, message.to, fate.wamid, now)
        assert fate.final is not None
        self.ledger.record_accepted(record, fate.final, fate.later_failure)
        if fate.statuses:
            self._schedule(message, fate, now)
        return Answer(
            200,
            accepted_body(message.to, message.wa_id, fate.wamid),
            None,
            message.campaign_id,
            cacheable=True,
            record=record,
        )

    def _schedule(self, message: SendMessage, fate: Fate, now: float) -> None:
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
                    ),
                )
                for planned in fate.statuses
            ]
        )
        kinds = [planned.status for planned in fate.statuses if not planned.duplicate]
        self.ledger.record_scheduled(message.campaign_id, kinds, fate.duplicated, fate.out_of_order)


def _content_key(message: SendMessage) -> str:
    """The key of a request without Idempotency-Key: its recipient and content."""
    digest = hashlib.blake2b(f"{message.to}\x1e{message.content}".encode(), digest_size=16).hexdigest()
    return "body-" + digest
