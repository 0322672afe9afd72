"""domain/events.py: the live wire payloads are complete (every key required: an event
is the whole truth at its moment) and tell progress from status by their type.
Pure: no I/O."""

from __future__ import annotations

import json
import typing
from typing import Literal

import pytest

from domain.events import ProgressEvent, StatsPayload, StatusEvent

PAYLOADS = [StatsPayload, ProgressEvent, StatusEvent]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.__name__)
def test_every_key_of_a_payload_is_required(payload: type) -> None:
    assert payload.__required_keys__ == set(typing.get_type_hints(payload))  # type: ignore[attr-defined]
    assert payload.__optional_keys__ == frozenset()  # type: ignore[attr-defined]


def test_the_two_events_are_told_apart_by_their_type_literal() -> None:
    assert typing.get_type_hints(ProgressEvent)["type"] == Literal["progress"]
    assert typing.get_type_hints(StatusEvent)["type"] == Literal["status"]


def test_both_events_name_their_campaign_workspace_version_and_moment() -> None:
    common = {"type", "campaign_id", "workspace_id", "version", "at"}
    assert common <= ProgressEvent.__required_keys__ & StatusEvent.__required_keys__
    assert typing.get_type_hints(ProgressEvent)["at"] is float
    assert typing.get_type_hints(ProgressEvent)["stats"] is StatsPayload


def test_only_a_status_events_origin_and_reason_may_be_null() -> None:
    for payload in PAYLOADS:
        nullable = {k for k, t in typing.get_type_hints(payload).items() if type(None) in typing.get_args(t)}
        assert nullable == ({"from_status", "reason"} if payload is StatusEvent else set())


def test_an_event_survives_the_json_wire_unchanged() -> None:
    stats = StatsPayload(total=5, pending=1, sent=3, delivered=2, read=1, replied=1, failed=1, cancelled=0)
    progress = ProgressEvent(
        type="progress", campaign_id=7, workspace_id=1, status="PROCESSING", version=4, stats=stats, at=1.5
    )
    status = StatusEvent(
        type="status",
        campaign_id=7,
        workspace_id=1,
        name="Sale",
        from_status=None,
        to_status="DRAFT",
        reason=None,
        version=1,
        at=2.0,
    )
    for event in (progress, status):
        assert json.loads(json.dumps(event)) == event
