"""Snapshots and subscription payloads the watch tests share."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from watch.snapshot import Snapshot

RUNNING = Snapshot(
    "Q2FtcGFpZ246MQ", "PROCESSING", total=5000, pending=4614, sent=386, delivered=59, read=3, failed=0, send_rate=382.4
)
LATER = replace(RUNNING, pending=408, sent=4572, delivered=3959, read=1668, failed=20)
DONE = Snapshot(
    "Q2FtcGFpZ246MQ",
    "COMPLETED",
    total=1000,
    pending=0,
    sent=990,
    delivered=900,
    read=450,
    replied=12,
    failed=10,
    delivery_rate=900 / 990,
    read_rate=0.5,
    failure_rate=0.01,
)


def progress_payload(
    status: str, total: int, pending: int, sent: int = 0, failed: int = 0, rate: float = 0.0
) -> dict[str, Any]:
    stats = {
        "total": total,
        "pending": pending,
        "sent": sent,
        "delivered": 0,
        "read": 0,
        "failed": failed,
        "cancelled": 0,
        "progress": (total - pending) / total if total else 0.0,
        "deliveryRate": 0.0,
        "readRate": 0.0,
        "failureRate": 0.0,
    }
    return {
        "campaignId": "Q2FtcGFpZ246MQ",
        "status": status,
        "stats": stats,
        "sendRate": rate,
        "at": "2026-01-01T00:00:00+00:00",
    }
