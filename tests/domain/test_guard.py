"""domain/guard.py: the failure guard's rate counts what was resolved since the run
began (receipts included), and the guard pauses a PROCESSING campaign with a threshold
once its sample is resolved and the rate is above the threshold, saying why. Pure."""

from __future__ import annotations

import pytest

from domain.guard import auto_pause_reason, guard_rate
from domain.lifecycle import CampaignStatus
from domain.sending import CampaignToSend, Counts

START = Counts(CampaignStatus.PROCESSING, sent=100, failed=50)  # an earlier run's


def campaign(threshold: float | None = 0.05, sample: int = 100) -> CampaignToSend:
    return CampaignToSend(1, 1, "Hi", None, None, None, threshold, sample)


def test_the_guard_rate_counts_what_was_resolved_since_the_run_began() -> None:
    assert guard_rate(START, Counts(CampaignStatus.PROCESSING, 150, 54), sample_size=100) is None  # 54 resolved
    rate = guard_rate(START, Counts(CampaignStatus.PROCESSING, 190, 60), sample_size=100)
    assert rate == pytest.approx(10 / 100)
    # a receipt moving a sent message to failed moves the rate, not the sample
    assert guard_rate(START, Counts(CampaignStatus.PROCESSING, 189, 61), sample_size=100) == pytest.approx(0.11)


def test_above_the_threshold_after_the_sample_the_guard_pauses_saying_why() -> None:
    now = Counts(CampaignStatus.PROCESSING, 190, 60)  # 10 failed of 100 resolved
    assert auto_pause_reason(campaign(0.05), START, now) == "Failure rate 10.0% is above 5.0% after 100 attempts."


@pytest.mark.parametrize(
    ("threshold", "sample", "now"),
    [
        (None, 100, Counts(CampaignStatus.PROCESSING, 100, 150)),  # no threshold: never
        (0.05, 100, Counts(CampaignStatus.PROCESSING, 150, 54)),  # sample not resolved yet
        (0.10, 100, Counts(CampaignStatus.PROCESSING, 190, 60)),  # at the threshold, not above
        (0.05, 100, Counts(CampaignStatus.PAUSED, 190, 60)),  # not PROCESSING any more
    ],
)
def test_the_guard_leaves_the_campaign_alone(threshold: float | None, sample: int, now: Counts) -> None:
    assert auto_pause_reason(campaign(threshold, sample), START, now) is None
