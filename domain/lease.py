"""The lease a run holds on its campaign, and how long a run may trust it.

A lease is a row in the database (owner, fence, expiry). The fence is bumped every time
a lease is taken, and every claim and outcome a run writes names the fence it holds,
so a worker that was paused past its lease (SIGSTOP, a frozen VM, a GC pause) cannot
claim anything once another worker took over, and its late outcomes land only on the
rows it claimed itself (docs/DESIGN.md, "Fencing").

The database's expiry (`ttl`) is what another worker waits for before taking over.
The run trusts its lease for much less: `proof` seconds from the moment it *sent* the
renewal (or the acquisition) that succeeded, measured on its own monotonic and wall
clocks. A provider call starts only while that proof holds, so:
- a run that stops hearing from the database stops starting calls within `proof`;
- once a pause or cancel has committed, no call of any run starts later than `proof`
  after the commit, whether or not the worker got the Redis message: the renewal that
  follows the commit fails, and the one before it proved at most `proof` seconds.
  That is what lets pauseCampaign keep its promise with Redis down (jobs/effects.py).
Pure: the clocks are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: Longest proof any run may use. The API waits this long after a pause or cancel commit
#: when the lease holder did not acknowledge, so every worker's proof must be within it.
MAX_PROOF_S = 3.0


@dataclass(frozen=True, slots=True)
class LeaseTimes:
    """How a run keeps its lease: renewed every `renew_every`, trusted for `proof`."""

    ttl: float = 15.0
    renew_every: float = 1.0
    proof: float = MAX_PROOF_S

    @classmethod
    def for_ttl(cls, ttl: float) -> LeaseTimes:
        """Renew 15 times per TTL, trust a renewal for a fifth of it (at most MAX_PROOF_S):
        a takeover needs the whole TTL, so a run stops long before anyone may take over,
        even with the two machines' clocks some seconds apart."""
        proof = min(MAX_PROOF_S, ttl / 5)
        return cls(ttl=ttl, renew_every=min(proof / 3, ttl / 15), proof=proof)


class LeaseProof:
    """Until when a run can prove it still holds its lease.

    `renewed(mono, wall)` takes the clocks read just before the successful request was
    sent: the database may have applied it any time after that, never before. `valid`
    needs both clocks inside the window: a monotonic clock does not count a frozen VM's
    pause on every hypervisor, while the wall clock is corrected after it."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._mono = float("-inf")
        self._wall = float("-inf")

    def renewed(self, mono: float, wall: float) -> None:
        self._mono = max(self._mono, mono + self.window)
        self._wall = max(self._wall, wall + self.window)

    def valid(self, mono: float, wall: float) -> bool:
        return mono < self._mono and wall < self._wall

    def remaining(self, mono: float) -> float:
        return self._mono - mono


class StopConfirmation(StrEnum):
    """How a pause or cancel of a sending campaign was made sure of before it returned."""

    #: the worker holding the lease stopped and said so (no call starts any more)
    ACKNOWLEDGED = "acknowledged"
    #: no worker answered in time: the mutation waited until no lease proof that
    #: predates the commit can still hold, so no call starts any more either
    LEASE_PROOF = "lease-proof"
    #: no live lease when it committed: no worker was sending
    NOT_SENDING = "not-sending"
