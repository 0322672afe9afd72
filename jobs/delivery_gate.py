"""A run's gate for local-time sending and send windows (domain/delivery.py).

Before each claim the run asks the gate; when a zone's messages must not start now
(its local send time is ahead, or its window is closed) the gate puts them to wait in
the store (`SendingStore.hold`: `not_before`, `wait_reason`), so the claim skips them
and, once all that is left waits, the run ends WAITING and holds no lease until the
wake job (or the sweep) brings it back. The plan is evaluated again only when it can
change: when a released zone's window closes or a waiting zone's time comes, never on
every claim. Right before each call the run asks `lapsed()`: once a window has closed,
the messages it had claimed go back unsent and wait like the others.
"""

from __future__ import annotations

import logging
from datetime import datetime

from domain.sending import Lease, SendingStore
from domain.waiting import WaitReason
from runtime import clock

log = logging.getLogger("campaigns.sender")


class DeliveryGate:
    def __init__(self, store: SendingStore, lease: Lease) -> None:
        self.store = store
        self.lease = lease
        self.plan = lease.campaign.delivery
        self._zones: list[str | None] | None = None
        #: business time at which the plan may change; None: evaluate at the next claim
        self._next: datetime | None = None

    def lapsed(self) -> bool:
        """Whether the plan may have changed since it was last applied (a window closed,
        a wait ended): checked right before each provider call, so no message starts
        after its window closed; the run then applies the plan again before claiming."""
        return self._next is not None and clock.now() >= self._next

    async def apply(self) -> int:
        """Put to wait what must not start now; how many messages that was."""
        if not self.plan.constrained:
            return 0
        now = clock.now()
        if self._next is not None and now < self._next:
            return 0
        if self._zones is None:
            # None stands for every message when the plan does not depend on the
            # recipient's zone (a window in one fixed zone)
            by_zone = self.plan.by_recipient_zone
            self._zones = await self.store.zones(self.lease.campaign.id) if by_zone else [None]
        holds: dict[str | None, tuple[datetime, WaitReason]] = {}
        changes: list[datetime] = []
        for zone_name in self._zones:
            released = self.plan.release(zone_name, now)
            if released is not None:
                holds[zone_name] = released
                changes.append(released[0])
            else:
                closes = self.plan.recheck_at(zone_name, now)
                if closes is not None:
                    changes.append(closes)
        self._next = min(changes) if changes else datetime.max.replace(tzinfo=now.tzinfo)
        if not holds:
            return 0
        held = await self.store.hold(self.lease, holds, self.plan.by_recipient_zone)
        if held:
            log.info("campaign %s: %s messages wait for their time or window", self.lease.campaign.id, held)
        return held
