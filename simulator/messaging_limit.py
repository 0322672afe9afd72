"""The messaging limit as the simulator enforces it, and the clock it reads.

Meta caps the unique users a business number messages per moving 24 hours by its tier
(TIER_250 ... TIER_UNLIMITED, docs/STACK.md "Limits"): a user messaged within the last
24 hours does not count again. Meta documents no error code for crossing it. The older
On-Premises API documentation says a message to a new user beyond the limit fails with
"Message failed to send because there are restrictions on how many messages can be sent
from this phone number", the details Meta's error codes give 131048 ("Spam rate limit
hit"); the simulator answers that, at once, and keeps count in its ledger (our
reading). A refusal is not an idempotent answer to replay: the same request may be
accepted once the window has rolled.

`Clock` is the simulator's time: the system clock (or a test's callable) plus an
offset that `POST /_simulator/clock` moves, so a test crosses a day without waiting.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

#: unique recipients per moving window, by Meta's tier names; None: unlimited
TIER_LIMITS: dict[str, int | None] = {
    "TIER_250": 250,
    "TIER_2K": 2_000,
    "TIER_10K": 10_000,
    "TIER_100K": 100_000,
    "TIER_UNLIMITED": None,
}
WINDOW_S = 24 * 3600.0
#: Meta's code for a send refused by the limit (see above; its words: simulator/wire.py)
LIMIT_CODE = 131048


class Clock:
    """Unix time as the simulator reads it: `base()` plus `offset` seconds."""

    def __init__(self, base: Callable[[], float] = time.time) -> None:
        self.base = base
        self.offset = 0.0

    def __call__(self) -> float:
        return self.base() + self.offset


class RecipientWindow:
    """One number's unique recipients in the moving window, by the time each was last
    accepted: amortised O(1) per send (a queue of acceptances, expired from the left)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: wa_id -> its latest acceptance
        self._last: dict[str, float] = {}
        self._order: deque[tuple[float, str]] = deque()
        #: the most recipients counted at once; sends refused for the limit
        self.peak = 0
        self.refused = 0

    def _expire(self, now: float) -> None:
        since = now - WINDOW_S
        while self._order and self._order[0][0] <= since:
            at, wa_id = self._order.popleft()
            if self._last.get(wa_id) == at:
                del self._last[wa_id]

    def used(self, now: float) -> int:
        """Recipients counted at `now`."""
        self._expire(now)
        return len(self._last)

    def oldest(self, now: float) -> float | None:
        """When the recipient counted longest was last accepted (None: nobody counts)."""
        self._expire(now)
        return min(self._last.values()) if self._last else None

    def admit(self, wa_id: str, now: float) -> bool:
        """Whether a message to `wa_id` may be accepted at `now`; if so, it is counted
        (again) from `now`. A recipient already counted always may."""
        self._expire(now)
        if wa_id not in self._last and len(self._last) >= self.limit:
            self.refused += 1
            return False
        self._last[wa_id] = now
        self._order.append((now, wa_id))
        self.peak = max(self.peak, len(self._last))
        return True

    def to_json(self, now: float) -> dict[str, object]:
        oldest = self.oldest(now)
        return {
            "limit": self.limit,
            "used": len(self._last),
            "peak": self.peak,
            "refused": self.refused,
            "resets_at": None if oldest is None else oldest + WINDOW_S,
        }
