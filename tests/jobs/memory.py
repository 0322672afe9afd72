"""In-memory stand-ins for the send core's two ports, for tests of milliseconds.

`MemoryStore` keeps the SendingStore contract the way services/sending_store.py keeps
it in SQL (fenced leases, claims and outcomes; counters derived from the rows, so they
always equal a GROUP BY); `ScriptedProvider` answers each call from a script and can
hold calls in flight. Neither is a mock of a real part: they are fakes of our own
Protocols (domain/sending.py), as the developers' guide allows for the send core.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from domain.lifecycle import TABLE, Action, CampaignStatus
from domain.messages import MessageStatus as M
from domain.sending import (
    IN_DOUBT_CODE,
    CampaignToSend,
    Claimed,
    Counts,
    InDoubtPolicy,
    Lease,
    Outcome,
    Reconciled,
    Recorded,
    RecordedStatus,
    Remaining,
    SendRequest,
    SendResult,
    Written,
)
from domain.waiting import WaitReason
from runtime import clock


@dataclass
class Row:
    id: int
    phone: str
    status: M = M.PENDING
    send_round: int = 0
    claim_fence: int | None = None
    doubt_at: float | None = None
    provider_message_id: str | None = None
    error_code: str | None = None
    attempts: int = 0
    time_zone: str | None = None
    #: business time before which it is not claimed (runtime/clock.py), and why
    not_before: datetime | None = None
    wait_reason: WaitReason | None = None


@dataclass
class MemoryStore:
    """One campaign, PROCESSING by default, with `n` PENDING messages."""

    n: int = 10
    campaign: CampaignToSend = field(
        default_factory=lambda: CampaignToSend(
            id=1,
            workspace_id=1,
            body="Hi {{name}}",
            template_name=None,
            template_language=None,
            send_rate=None,
            failure_threshold=None,
            failure_sample_size=100,
        )
    )
    status: CampaignStatus = CampaignStatus.PROCESSING
    owner: str | None = None
    fence: int = 0
    expires: float = 0.0
    #: set by receipts in a test: the reconciliation's "statuses do reach us"
    last_receipt_at: float | None = None
    rows: dict[int, Row] = field(default_factory=dict)
    transitions: list[tuple[Action, str, str | None]] = field(default_factory=list)
    #: awaited by every renewal (a test can make renewals hang or fail)
    renew_hook: Callable[[], Awaitable[None]] | None = None
    renewals: int = 0
    record_fails: int = 0  # the next this many record() calls raise
    max_sending: int = 0  # the most messages SENDING at once, seen at claim time

    def __post_init__(self) -> None:
        if not self.rows:
            self.rows = {i: Row(i, f"+1415555{i:04d}") for i in range(1, self.n + 1)}

    # ------------------------------------------------------------- test helpers

    def by_status(self) -> dict[M, int]:
        found: dict[M, int] = {}
        for row in self.rows.values():
            found[row.status] = found.get(row.status, 0) + 1
        return found

    def counts(self) -> Counts:
        by = self.by_status()
        return Counts(self.status, by.get(M.SENT, 0) + by.get(M.DELIVERED, 0) + by.get(M.READ, 0), by.get(M.FAILED, 0))

    def fail_by_receipt(self, ids: Sequence[int], code: str = "131026") -> None:
        """What a `failed` status webhook does to SENT messages."""
        for i in ids:
            row = self.rows[i]
            assert row.status is M.SENT
            row.status, row.error_code = M.FAILED, code

    def take_over(self, owner: str = "other") -> None:
        """Another worker takes the lease (the old one expired)."""
        self.owner, self.fence, self.expires = owner, self.fence + 1, time.monotonic() + 15

    # ------------------------------------------------------------- the protocol

    async def acquire_lease(self, campaign_id: int, owner: str, ttl: float) -> Lease | None:
        now = time.monotonic()
        if self.status not in (CampaignStatus.QUEUED, CampaignStatus.PROCESSING):
            return None
        if self.owner is not None and self.expires > now:
            return None
        self.owner, self.fence, self.expires = owner, self.fence + 1, now + ttl
        self.status = CampaignStatus.PROCESSING
        for row in self.rows.values():
            if row.status is M.SENDING and row.doubt_at is None:
                row.doubt_at = time.time()
        return Lease(self.campaign, owner, self.fence, self.counts())

    def _holds(self, lease: Lease) -> bool:
        return self.owner == lease.owner and self.fence == lease.fence

    async def renew_lease(self, lease: Lease, ttl: float) -> Counts | None:
        self.renewals += 1
        if self.renew_hook is not None:
            await self.renew_hook()
        if not self._holds(lease) or self.status is not CampaignStatus.PROCESSING:
            return None
        self.expires = time.monotonic() + ttl
        return self.counts()

    async def release_lease(self, lease: Lease) -> None:
        if self._holds(lease):
            self.owner = None

    async def claim(self, lease: Lease, limit: int, after: int = 0) -> list[Claimed]:
        if not self._holds(lease) or self.status is not CampaignStatus.PROCESSING or self.expires < time.monotonic():
            return []
        now = clock.now()
        pending = [
            r
            for r in sorted(self.rows.values(), key=lambda r: r.id)
            if r.status is M.PENDING and r.id > after and (r.not_before is None or r.not_before <= now)
        ]
        taken = pending[:limit]
        for row in taken:
            row.status, row.claim_fence, row.doubt_at, row.error_code = M.SENDING, lease.fence, None, None
            row.not_before = row.wait_reason = None
            row.attempts += 1
        self.max_sending = max(self.max_sending, self.by_status().get(M.SENDING, 0))
        return [Claimed(r.id, r.phone, {"name": f"User {r.id}"}, r.send_round) for r in taken]

    async def record(self, lease: Lease, outcomes: Sequence[Recorded]) -> Written:
        if self.record_fails:
            self.record_fails -= 1
            raise ConnectionError("database unavailable")
        sent = failed = 0
        for o in outcomes:
            row = self.rows[o.message_id]
            if row.claim_fence != lease.fence:
                continue
            if o.status is RecordedStatus.SENT:
                if row.send_round != o.send_round:
                    continue
                doubtful = row.status is M.FAILED and row.error_code == IN_DOUBT_CODE
                if row.status in (M.SENDING, M.PENDING) or doubtful:
                    row.status, row.provider_message_id, row.doubt_at, row.error_code = (
                        M.SENT,
                        o.provider_message_id,
                        None,
                        None,
                    )
                    row.attempts += o.extra_attempts
                    sent += 1
                continue
            if row.status is not M.SENDING:
                continue
            row.attempts += o.extra_attempts
            if o.status is RecordedStatus.FAILED:
                row.status, row.error_code, row.doubt_at = M.FAILED, o.error_code, None
                failed += 1
            elif o.status is RecordedStatus.IN_DOUBT:
                row.doubt_at, row.error_code = time.time(), IN_DOUBT_CODE
            else:
                row.status = M.CANCELLED if self.status is CampaignStatus.CANCELLED else M.PENDING
                row.doubt_at = None
        return Written(sent, failed, self.counts())

    async def reconcile(self, lease: Lease, window: float, policy: InDoubtPolicy) -> Reconciled:
        if not self._holds(lease):
            return Reconciled()
        cutoff = time.time() - window
        resent = failed = 0
        for row in self.rows.values():
            if row.status is not M.SENDING or row.doubt_at is None or row.doubt_at > cutoff:
                continue
            flowing = self.last_receipt_at is not None and row.doubt_at < self.last_receipt_at
            if policy is InDoubtPolicy.RESEND and flowing:
                row.status, row.doubt_at, row.error_code = M.PENDING, None, None
                resent += 1
            else:
                row.status, row.doubt_at, row.error_code = M.FAILED, None, IN_DOUBT_CODE
                failed += 1
        return Reconciled(resent, failed)

    async def remaining(self, campaign_id: int) -> Remaining:
        rows = self.rows.values()
        now = clock.now()
        waits = sum(r.status is M.PENDING and r.not_before is not None and r.not_before > now for r in rows)
        return Remaining(
            pending=sum(r.status is M.PENDING for r in rows) - waits,
            sending=sum(r.status is M.SENDING for r in rows),
            in_doubt=sum(r.status is M.SENDING and r.doubt_at is not None for r in rows),
            waiting=waits,
        )

    async def zones(self, campaign_id: int) -> list[str | None]:
        found = {r.time_zone for r in self.rows.values() if r.status is M.PENDING}
        return sorted(found, key=lambda z: z or "")

    async def hold(self, lease: Lease, holds: Mapping[str | None, tuple[datetime, WaitReason]], by_zone: bool) -> int:
        if not self._holds(lease) or self.status is not CampaignStatus.PROCESSING:
            return 0
        held = 0
        for zone_name, (until, reason) in holds.items():
            for row in self.rows.values():
                if row.status is not M.PENDING or (by_zone and row.time_zone != zone_name):
                    continue
                if row.not_before is None or row.not_before < until:
                    row.not_before, row.wait_reason = until, reason
                    held += 1
        return held

    async def transition(self, campaign_id: int, action: Action, actor: str, reason: str | None) -> bool:
        target = TABLE.get((self.status, action))
        if target is None:
            return False
        self.status = target
        self.transitions.append((action, actor, reason))
        return True


Script = Callable[[SendRequest, int], SendResult]


def accept(request: SendRequest, attempt: int) -> SendResult:
    return SendResult(Outcome.ACCEPTED, provider_message_id=f"wamid.{request.message_id}.{attempt}")


@dataclass
class Call:
    message_id: int
    attempt: int
    started: float  # monotonic


@dataclass
class ScriptedProvider:
    """Answers each call with `script(request, attempt)` (attempt counts from 0 per
    message). While `gate` is set-able and not set, calls wait in flight."""

    script: Script = accept
    honours_idempotency: bool = False
    gate: asyncio.Event | None = None
    latency: float = 0.0
    calls: list[Call] = field(default_factory=list)
    answered: list[tuple[int, SendResult]] = field(default_factory=list)
    _tries: dict[int, int] = field(default_factory=dict)

    def attempts(self, message_id: int) -> int:
        return self._tries.get(message_id, 0)

    @property
    def in_flight(self) -> int:
        return len(self.calls) - len(self.answered)

    async def send(self, request: SendRequest) -> SendResult:
        started = time.monotonic()  # first: the moment the run let the call start
        attempt = self._tries.get(request.message_id, 0)
        self._tries[request.message_id] = attempt + 1
        self.calls.append(Call(request.message_id, attempt, started))
        if self.gate is not None:
            await self.gate.wait()
        if self.latency:
            await asyncio.sleep(self.latency)
        result = self.script(request, attempt)
        self.answered.append((request.message_id, result))
        return result

    async def close(self) -> None:
        return None


@dataclass
class CountingLimiter:
    """No pacing (or `interval` seconds between slots); counts slots and backoffs."""

    interval: float = 0.0
    acquired: int = 0
    backoffs: list[float] = field(default_factory=list)
    _until: float = 0.0

    async def acquire(self) -> None:
        self.acquired += 1
        wait = max(self._until - time.monotonic(), 0.0)
        self._until = max(self._until, time.monotonic()) + self.interval
        if wait:
            await asyncio.sleep(wait)

    def backoff(self, seconds: float) -> None:
        self.backoffs.append(seconds)
        self._until = max(self._until, time.monotonic() + seconds)
