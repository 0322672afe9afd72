"""A `campaignProgress` payload read into a snapshot."""

from __future__ import annotations

from dataclasses import replace

from tests.watch.samples import progress_payload as _progress
from watch.snapshot import Snapshot


def test_snapshot_from_a_subscription_payload() -> None:
    snap = Snapshot.from_payload(_progress("PROCESSING", total=10, pending=4, sent=5, failed=1, rate=2.5))
    assert (snap.status, snap.total, snap.processed, snap.sent, snap.failed, snap.send_rate) == (
        "PROCESSING",
        10,
        6,
        5,
        1,
        2.5,
    )
    assert not snap.terminal and replace(snap, status="FAILED").terminal
