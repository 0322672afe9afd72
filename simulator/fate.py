"""Every random decision about one send attempt, drawn from its own seeded generator.

The generator is `random.Random(f"{seed}:{key}")` (`#<n>` appended for the n-th retry of a
key after a transient error), so what happens to a message does not depend on arrival
order, concurrency or what other messages did: re-running a benchmark with the same seed
gives the same failures, and a test can predict them.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from simulator.config import SimulatorConfig

_STANDARD_NORMAL = statistics.NormalDist()


class PlannedStatus(NamedTuple):
    """A status webhook: `event_s` is when it happened (its timestamp), `post_s` when it
    is posted; both in seconds after acceptance. They differ for out-of-order ones.
    A NamedTuple: several are built per message, and frozen dataclasses are slow to build."""

    post_s: float
    event_s: float
    status: str  # sent | delivered | read | failed
    error_code: int | None = None
    #: the second copy of a status posted twice on purpose
    duplicate: bool = False


#: how an accepted send is answered
ANSWERED, LOST, SLOW = "answered", "lost", "slow"


@dataclass(slots=True)
class Fate:
    """The outcome of one attempt: an immediate error, or acceptance and later statuses."""

    wamid: str
    latency_s: float
    error: str | None
    #: in posting order
    statuses: tuple[PlannedStatus, ...]
    #: strongest status the message reaches: sent | delivered | read | failed (None if error)
    final: str | None
    later_failure: str | None
    duplicated: bool
    out_of_order: bool
    #: ANSWERED, LOST (the connection drops) or SLOW (answered after the client gave up)
    answer: str = ANSWERED
    late: bool = False


def attempt_seed(seed: int, key: str, attempt: int) -> str:
    return f"{seed}:{key}" if attempt == 0 else f"{seed}:{key}#{attempt}"


def make_wamid(seed: int, key: str, attempt: int) -> str:
    """Shaped like Meta's ids (`wamid.` + base64); deterministic per seed, key and attempt."""
    digest = hashlib.blake2b(attempt_seed(seed, key, attempt).encode(), digest_size=27).digest()
    return "wamid." + base64.b64encode(digest).decode()


def _pick(mix: Mapping[str, float], u: float) -> str | None:
    """The code whose cumulative slice holds u, or None (u in the remaining mass)."""
    total = 0.0
    for code, p in mix.items():
        total += p
        if u < total:
            return code
    return None


def _between(rng: random.Random, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return (low + (high - low) * rng.random()) / 1000.0


def decide(config: SimulatorConfig, key: str, attempt: int, plan: bool = True) -> Fate:
    """Draw the fate of attempt `attempt` (0-based) of `key`. Draw order is fixed: latency,
    immediate error, later failure, delivered, read, delays, duplicate, out of order.
    `plan=False` (no webhook receiver) skips the webhook schedule; the outcome is the same."""
    rng = random.Random(attempt_seed(config.seed, key, attempt))
    latency = _latency(rng, config)
    wamid = make_wamid(config.seed, key, attempt)
    error = _pick(config.error_mix, rng.random()) if config.error_mix else None
    if error is not None:
        return Fate(wamid, latency, error, (), None, None, False, False)

    # Answer faults and lateness draw from streams of their own, so turning them on
    # changes no other decision of the same seed.
    answer = _answer(config, random.Random(attempt_seed(config.seed, key, attempt) + "/answer"))
    later_failure = _pick(config.later_failure_mix, rng.random()) if config.later_failure_mix else None
    delivered = rng.random() < config.delivered_probability
    read = rng.random() < config.read_probability
    if not plan:
        final = _final(later_failure, delivered, read)
        return Fate(wamid, latency, None, (), final, later_failure, False, False, answer)
    sent_at = _between(rng, config.sent_delay_ms)
    delivered_at = max(sent_at, _between(rng, config.delivered_delay_ms))
    read_at = delivered_at + _between(rng, config.read_delay_ms)

    final = _final(later_failure, delivered, read)
    planned: list[PlannedStatus] = []
    if config.send_sent_status:
        planned.append(PlannedStatus(sent_at, sent_at, "sent"))
    if final == "failed":
        # Meta reports a failure where the delivery would have come.
        planned.append(PlannedStatus(delivered_at, delivered_at, "failed", int(str(later_failure))))
    elif final in ("delivered", "read"):
        planned.append(PlannedStatus(delivered_at, delivered_at, "delivered"))
        if final == "read":
            planned.append(PlannedStatus(read_at, read_at, "read"))

    duplicated = bool(planned) and rng.random() < config.duplicate_webhook_probability
    if duplicated:
        original = planned[rng.randrange(len(planned))]
        planned.append(
            PlannedStatus(
                original.post_s + 0.05 + rng.random(),
                original.event_s,
                original.status,
                original.error_code,
                True,
            )
        )
    out_of_order = final == "read" and rng.random() < config.out_of_order_probability
    if out_of_order:
        # The delivered event keeps its true timestamp; only its webhook comes after read's.
        planned = [
            PlannedStatus(read_at + 0.05 + 0.45 * rng.random(), s.event_s, s.status, None, s.duplicate)
            if s.status == "delivered"
            else s
            for s in planned
        ]
    late_rng = random.Random(attempt_seed(config.seed, key, attempt) + "/late")
    late = bool(planned) and late_rng.random() < config.late_probability
    if late:
        extra = _between(late_rng, config.late_delay_ms)
        planned = [s._replace(post_s=s.post_s + extra) for s in planned]
    planned.sort(key=lambda s: s.post_s)
    return Fate(wamid, latency, None, tuple(planned), final, later_failure, duplicated, out_of_order, answer, late)


def _answer(config: SimulatorConfig, rng: random.Random) -> str:
    u = rng.random()
    if u < config.lost_answer_probability:
        return LOST
    if u < config.lost_answer_probability + config.slow_answer_probability:
        return SLOW
    return ANSWERED


def _final(later_failure: str | None, delivered: bool, read: bool) -> str:
    """The strongest status a message reaches (read implies delivered)."""
    if later_failure is not None:
        return "failed"
    if delivered:
        return "read" if read else "delivered"
    return "sent"


def _latency(rng: random.Random, config: SimulatorConfig) -> float:
    """Seconds before the answer; always one draw so later draws do not shift with the mean."""
    u = rng.random()
    mean = config.latency_mean_ms
    if mean <= 0:
        return 0.0
    sigma = config.latency_jitter
    if sigma <= 0:
        return mean / 1000.0
    # Lognormal with the configured mean: mu = ln(mean) - sigma^2 / 2. Inverse CDF of one
    # uniform keeps it to a single draw.
    z = _STANDARD_NORMAL.inv_cdf(min(max(u, 1e-12), 1 - 1e-12))
    return math.exp(math.log(mean) - sigma * sigma / 2 + sigma * z) / 1000.0
