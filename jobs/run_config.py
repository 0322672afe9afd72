"""What a campaign run (jobs/sender.py) is given and how it ends: its settings
(`RunConfig`), the port it paces every call through (`Limiter`), why it stopped
(`RunEnded`) and the stop itself (`RunStop`), which the run's parts wait on."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from domain.lease import LeaseTimes
from domain.lifecycle import Action
from domain.sending import InDoubtPolicy


class Limiter(Protocol):
    async def acquire(self) -> None:
        """Wait until one more send may start."""
        ...

    def backoff(self, seconds: float) -> None:
        """The provider asked to slow down (130429): hand out no slot for `seconds`."""
        ...


class RunEnded(StrEnum):
    """Why a run stopped sending."""

    COMPLETED = "completed"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FAILED = "failed"
    LEASE_LOST = "lease-lost"
    SHUTDOWN = "shutdown"
    #: only in-doubt messages are left: the sweep reconciles them after the window
    WAITING = "waiting"
    #: something else resolved the last messages meanwhile, or a stop came late
    INCOMPLETE = "incomplete"


#: what a control message's action stops a run with
STOPPED_BY: dict[Action, RunEnded] = {
    Action.PAUSE: RunEnded.PAUSED,
    Action.CANCEL: RunEnded.CANCELLED,
    Action.FAIL: RunEnded.FAILED,
}


@dataclass(frozen=True, slots=True)
class RunConfig:
    concurrency: int = 200
    batch_size: int = 500
    flush_every: float = 0.1
    lease: LeaseTimes = field(default_factory=LeaseTimes)
    #: messages per second this run may send at most (campaign and account limits)
    rate: float | None = None
    #: claim what can start within this many seconds at `rate`
    claim_horizon: float = 1.0
    #: seconds to wait for the calls in flight when stopped (beyond: they stay in doubt)
    drain_timeout: float = 20.0
    reconcile_window: float = 600.0
    in_doubt_policy: InDoubtPolicy = InDoubtPolicy.RESEND

    def claim_size(self) -> int:
        """What can start within `claim_horizon` at the run's rate (without a rate, what
        the concurrency lets start at once), at most a batch."""
        wanted = math.ceil(self.rate * self.claim_horizon) if self.rate else self.concurrency
        return max(1, min(self.batch_size, wanted))


class RunStop:
    """A run's stop: set once, synchronously (CampaignRun.stop), with why and when."""

    __slots__ = ("at", "event", "reason")

    def __init__(self) -> None:
        self.reason: RunEnded | None = None
        #: monotonic; the drain timeout counts from it
        self.at: float | None = None
        self.event = asyncio.Event()

    def set(self, reason: RunEnded) -> bool:
        """Stop with `reason`; True for the call that stopped the run, False once stopped
        (the first reason stays)."""
        if self.reason is not None:
            return False
        self.reason = reason
        self.at = time.monotonic()
        self.event.set()
        return True

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`, or less: a stop ends the wait early."""
        try:
            async with asyncio.timeout(seconds):
                await self.event.wait()
        except TimeoutError:
            pass
