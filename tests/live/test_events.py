"""live/events.py: each event is built in one place, from one source."""

from __future__ import annotations

from domain.lifecycle import CampaignStatus
from domain.stats import STAT_FIELDS
from live.events import COLUMNS, progress_event, status_event


def test_a_progress_event_carries_every_counter_and_absolute_numbers() -> None:
    row = {"id": 7, "workspace_id": 2, "status": CampaignStatus.PROCESSING, "version": 4} | {
        name: i for i, name in enumerate(STAT_FIELDS)
    }
    event = progress_event(row)
    assert event["type"] == "progress" and (event["campaign_id"], event["workspace_id"]) == (7, 2)
    assert event["status"] == "PROCESSING" and event["version"] == 4
    assert list(event["stats"]) == list(STAT_FIELDS)
    assert all(f'"{name}"' in COLUMNS for name in STAT_FIELDS)


def test_a_status_event_takes_enums_or_strings() -> None:
    event = status_event(
        campaign_id=1,
        workspace_id=2,
        name="Sale",
        from_status=CampaignStatus.PROCESSING,
        to_status="PAUSED",
        reason="Paused by Ann",
        version=5,
        at=12.5,
    )
    assert event == {
        "type": "status",
        "campaign_id": 1,
        "workspace_id": 2,
        "name": "Sale",
        "from_status": "PROCESSING",
        "to_status": "PAUSED",
        "reason": "Paused by Ann",
        "version": 5,
        "at": 12.5,
    }
    created = status_event(
        campaign_id=1, workspace_id=2, name="x", from_status=None, to_status="DRAFT", reason=None, version=1
    )
    assert created["from_status"] is None and created["at"] > 0
