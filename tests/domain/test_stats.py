"""The campaign's counters are declared once (domain.stats.STAT_FIELDS): every other
place that names them is checked against that list here."""

from __future__ import annotations

import re
import typing
from dataclasses import fields
from pathlib import Path

from domain.events import StatsPayload
from domain.receipts import Deltas
from domain.stats import STAT_FIELDS, Stats
from models import Campaign
from schema.types import CampaignStats
from services.reads import CampaignRow
from watch.snapshot import Snapshot as WatchSnapshot

ROOT = Path(__file__).resolve().parents[2]


def test_the_one_list_is_the_stats_dataclass() -> None:
    assert STAT_FIELDS == ("total", "pending", "sent", "delivered", "read", "replied", "failed", "cancelled")
    assert STAT_FIELDS == tuple(f.name for f in fields(Stats))


def test_every_declaration_of_the_counters_matches_it() -> None:
    assert tuple(typing.get_type_hints(StatsPayload)) == STAT_FIELDS  # the live event's payload
    assert set(STAT_FIELDS) <= set(Campaign._meta.fields_map)  # the campaign row
    row = [f for f in CampaignRow.__dataclass_fields__ if f in STAT_FIELDS]
    assert tuple(row) == STAT_FIELDS  # the campaigns list's row
    graphql = [f for f in CampaignStats.__annotations__ if f in STAT_FIELDS]
    assert tuple(graphql) == STAT_FIELDS  # the GraphQL type
    # `campaigns watch` stands apart (it is a client of the wire), so it keeps its own
    # copy of the names: checked here instead of imported there
    watched = [f.name for f in fields(WatchSnapshot) if f.name in STAT_FIELDS]
    assert tuple(watched) == STAT_FIELDS
    # what a receipt can move: every counter but total, cancelled and replied (inbound
    # messages move that one), in the same order
    moved_by_receipts = tuple(f for f in STAT_FIELDS if f not in ("total", "cancelled", "replied"))
    assert tuple(f.name for f in fields(Deltas)) == moved_by_receipts


def test_the_dashboard_shows_the_same_counters() -> None:
    dashboard = "\n".join(p.read_text() for p in (ROOT / "web" / "dashboard").rglob("*.js"))
    for name in STAT_FIELDS:
        assert re.search(rf"\b{name}\b", dashboard), name


def test_replied_is_consistent_only_within_the_total() -> None:
    assert Stats(total=3, sent=3, delivered=2, read=1, replied=3).is_consistent()
    assert not Stats(total=3, sent=3, replied=4).is_consistent()
    assert not Stats(total=3, sent=3, replied=-1).is_consistent()
