"""Campaign numbers and the rates derived from them."""

from __future__ import annotations

from dataclasses import dataclass, fields


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


@dataclass(frozen=True, slots=True)
class Stats:
    """Invariant: total = pending + sent + failed + cancelled; read <= delivered <= sent;
    replied (recipients who wrote back after their message was sent) <= total."""

    total: int = 0
    pending: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    replied: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def progress(self) -> float:
        return _ratio(self.total - self.pending, self.total)

    @property
    def delivery_rate(self) -> float:
        return _ratio(self.delivered, self.sent)

    @property
    def read_rate(self) -> float:
        return _ratio(self.read, self.delivered)

    @property
    def failure_rate(self) -> float:
        return _ratio(self.failed, self.sent + self.failed)

    def is_consistent(self) -> bool:
        return (
            self.total == self.pending + self.sent + self.failed + self.cancelled
            and 0 <= self.read <= self.delivered <= self.sent
            and 0 <= self.replied <= self.total
            and min(self.pending, self.failed, self.cancelled) >= 0
        )


#: THE list of a campaign's counters, in their order. Everything else that names them
#: (the campaign row, the live event's payload, the GraphQL type, the list's row, the
#: dashboard) derives from it or is checked against it (tests/domain/test_stats.py).
STAT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Stats))
