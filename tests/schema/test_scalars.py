"""schema/scalars.py: DateTime takes ISO 8601 with an offset and hands resolvers UTC,
refuses anything else saying what to send, and always answers with an offset;
SCALAR_MAP makes it the scalar of every `datetime` in the schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from schema.scalars import SCALAR_MAP, DateTime
from tests.conftest import Api
from tests.schema.states import mutate

IST = timezone(timedelta(hours=5, minutes=30))


def parse(value: Any) -> datetime:
    """What a resolver receives for a DateTime input."""
    assert DateTime.parse_value is not None
    parsed: datetime = DateTime.parse_value(value)
    return parsed


def serialize(value: datetime) -> str:
    """What a client receives for a DateTime output."""
    assert DateTime.serialize is not None
    text: str = DateTime.serialize(value)
    return text


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2030-01-01T09:00:00+05:30", datetime(2030, 1, 1, 3, 30, tzinfo=UTC)),
        ("2030-01-01T09:00:00Z", datetime(2030, 1, 1, 9, 0, tzinfo=UTC)),
        ("2030-06-30T20:15:00.250-07:00", datetime(2030, 7, 1, 3, 15, 0, 250_000, tzinfo=UTC)),
        ("2030-01-01 09:00:00+00:00", datetime(2030, 1, 1, 9, 0, tzinfo=UTC)),
    ],
)
def test_input_with_any_offset_reaches_resolvers_in_utc(given: str, expected: datetime) -> None:
    parsed = parse(given)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("2030-01-01T09:00:00", "has no UTC offset; add one"),
        ("2030-01-01", "has no UTC offset; add one"),
        ("tomorrow", "'tomorrow' is not an ISO 8601 date-time."),
        ("2030-02-30T09:00:00Z", "is not an ISO 8601 date-time."),
        (1_893_456_000, "DateTime must be an ISO 8601 string with an offset."),
        (["2030-01-01T09:00:00Z"], "DateTime must be an ISO 8601 string with an offset."),
    ],
)
def test_input_without_an_offset_or_not_a_date_time_is_refused_saying_what_to_send(given: Any, says: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse(given)
    assert says in str(refused.value)


def test_output_always_carries_an_offset() -> None:
    # stored values are UTC; a naive one read back is given its offset, never emitted bare
    assert serialize(datetime(2030, 1, 1, 9, 0)) == "2030-01-01T09:00:00+00:00"
    assert serialize(datetime(2030, 1, 1, 9, 0, tzinfo=UTC)) == "2030-01-01T09:00:00+00:00"
    assert serialize(datetime(2030, 1, 1, 9, 0, tzinfo=IST)) == "2030-01-01T09:00:00+05:30"


async def test_every_date_time_of_the_served_schema_is_this_scalar(api: Api) -> None:
    assert SCALAR_MAP == {datetime: DateTime}
    data = await api.gql(
        """{ __schema { types { name kind description } }
             campaign: __type(name: "Campaign") { fields { name type { name ofType { name } } } } }"""
    )
    scalars = {t["name"]: t["description"] for t in data["__schema"]["types"] if t["kind"] == "SCALAR"}
    assert scalars["DateTime"] == "ISO 8601 with an offset; input without an offset is rejected"
    assert not {name for name in scalars if "date" in name.lower() or "time" in name.lower()} - {"DateTime"}
    types = {f["name"]: f["type"]["name"] or f["type"]["ofType"]["name"] for f in data["campaign"]["fields"]}
    assert types["scheduledAt"] == "DateTime"
    assert types["createdAt"] == "DateTime"


async def test_times_are_answered_in_utc_with_an_offset_whatever_offset_they_came_with(api: Api) -> None:
    campaign = await api.ready_campaign(1)
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    payload = await mutate(
        api, "scheduleCampaign(id: $id, scheduledAt: $at)", id=campaign["id"], at=at.astimezone(IST).isoformat()
    )
    assert payload["userErrors"] == []
    assert payload["campaign"]["scheduledAt"] == at.isoformat()  # "…+00:00", read back from the database
    data = await api.gql("query($id: ID!) { campaign(id: $id) { createdAt events { at } } }", id=campaign["id"])
    stamps = [data["campaign"]["createdAt"], *(e["at"] for e in data["campaign"]["events"])]
    assert len(stamps) == 3
    for stamp in stamps:
        assert stamp.endswith("+00:00"), stamp
        assert abs(datetime.fromisoformat(stamp) - datetime.now(UTC)) < timedelta(minutes=5)
