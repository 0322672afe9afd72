"""domain/senders.py: the messaging-limit tiers and what a claim may take under them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.senders import (
    LIMIT_CLOCK_SKEW,
    LIMIT_MARGIN,
    LIMIT_MIN_WAIT,
    LIMIT_WINDOW,
    DailyLimit,
    Tier,
    admit,
    counted_since,
    counted_until,
    frees_at,
    parse_tier,
    stops_counting,
)

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "tier", "limit"),
    [
        ("TIER_250", Tier.TIER_250, 250),
        (" tier_2k ", Tier.TIER_2K, 2_000),
        ("TIER_10K", Tier.TIER_10K, 10_000),
        ("TIER_100K", Tier.TIER_100K, 100_000),
        ("TIER_UNLIMITED", Tier.TIER_UNLIMITED, None),
        # older names keep their own, smaller limits rather than a default
        ("TIER_50", Tier.TIER_50, 50),
        ("TIER_1K", Tier.TIER_1K, 1_000),
    ],
)
def test_meta_tier_names_and_their_limits(text: str, tier: Tier, limit: int | None) -> None:
    assert parse_tier(text) is tier
    assert tier.unique_recipients == limit == DailyLimit("1", tier).limit


@pytest.mark.parametrize("text", [None, "", "TIER_5K", "250"])
def test_an_unknown_tier_is_none(text: str | None) -> None:
    assert parse_tier(text) is None


def test_a_claim_takes_phones_already_counted_and_new_ones_while_room_lasts_in_id_order() -> None:
    candidates = [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]
    admitted = admit(candidates, {"c", "e"}, room=1)
    assert admitted.ids == [1, 3, 5] and admitted.refused == 2
    assert admit(candidates, set(), room=10).ids == [1, 2, 3, 4, 5]
    assert admit(candidates, set(), room=0).refused == 5
    # the same phone twice (another send round) takes one slot
    assert admit([(1, "a"), (2, "a"), (3, "b")], set(), room=1).ids == [1, 2]


def test_the_caller_s_set_of_counted_phones_is_left_as_it_was() -> None:
    counted = {"x"}
    admit([(1, "a")], counted, room=1)
    assert counted == {"x"}


def test_a_recipient_counts_for_the_window_and_its_margin() -> None:
    assert counted_since(NOW) == NOW - LIMIT_WINDOW - LIMIT_MARGIN
    # ahead of now only by another worker's clock skew, not by a clock moved back
    assert counted_until(NOW) == NOW + LIMIT_CLOCK_SKEW <= NOW + timedelta(minutes=1)
    assert stops_counting(NOW) == NOW + timedelta(hours=24) + LIMIT_MARGIN
    assert LIMIT_MARGIN < timedelta(minutes=10)  # small against the day, larger than retries


def test_refused_messages_wait_until_the_oldest_frees_and_at_least_a_minute() -> None:
    oldest = NOW - timedelta(hours=20)
    assert frees_at(oldest, NOW) == stops_counting(oldest)
    assert frees_at(NOW - LIMIT_WINDOW - LIMIT_MARGIN, NOW) == NOW + LIMIT_MIN_WAIT
    assert frees_at(None, NOW) == NOW + LIMIT_MIN_WAIT
