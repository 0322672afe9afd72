"""One `CampaignProgress` event as the watcher holds it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TERMINAL = frozenset({"COMPLETED", "CANCELLED", "FAILED"})


@dataclass(frozen=True)
class Snapshot:
    """One `CampaignProgress` event."""

    campaign_id: str
    status: str
    total: int = 0
    pending: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    replied: int = 0
    failed: int = 0
    cancelled: int = 0
    delivery_rate: float = 0.0
    read_rate: float = 0.0
    failure_rate: float = 0.0
    send_rate: float = 0.0
    at: str = ""

    @classmethod
    def from_payload(cls, progress: Mapping[str, Any]) -> Snapshot:
        stats = progress.get("stats") or {}

        def count(name: str) -> int:
            return int(stats.get(name) or 0)

        def ratio(name: str) -> float:
            return float(stats.get(name) or 0.0)

        return cls(
            campaign_id=str(progress.get("campaignId") or ""),
            status=str(progress.get("status") or "?"),
            total=count("total"),
            pending=count("pending"),
            sent=count("sent"),
            delivered=count("delivered"),
            read=count("read"),
            replied=count("replied"),
            failed=count("failed"),
            cancelled=count("cancelled"),
            delivery_rate=ratio("deliveryRate"),
            read_rate=ratio("readRate"),
            failure_rate=ratio("failureRate"),
            send_rate=float(progress.get("sendRate") or 0.0),
            at=str(progress.get("at") or ""),
        )

    @property
    def processed(self) -> int:
        return min(max(self.total - self.pending, 0), self.total)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def numbers(self) -> tuple[object, ...]:
        """What "settled" compares: the status and the counts (not the rate or time)."""
        return (
            self.status,
            self.total,
            self.pending,
            self.sent,
            self.delivered,
            self.read,
            self.replied,
            self.failed,
            self.cancelled,
        )
