"""The failure guard: a campaign whose messages fail too often pauses itself
(AUTO_PAUSE) instead of spending its recipients.

It reads the campaign's own counters since the run began, not the run's answers, so
failures reported later by receipt (a `failed` status webhook) count as much as
refusals at once. Pure: the counters are passed in.
"""

from __future__ import annotations

from domain.lifecycle import CampaignStatus
from domain.sending import CampaignToSend, Counts


def guard_rate(baseline: Counts, now: Counts, sample_size: int) -> float | None:
    """The failure rate of what was resolved since `baseline` (the run's start), receipts
    included; None until at least `sample_size` messages were resolved."""
    failed = now.failed - baseline.failed
    resolved = (now.sent - baseline.sent) + failed
    if resolved <= 0 or resolved < sample_size:
        return None
    return failed / resolved


def auto_pause_reason(campaign: CampaignToSend, baseline: Counts, now: Counts) -> str | None:
    """Why the guard pauses `campaign` now (the reason recorded with AUTO_PAUSE), or None:
    the campaign has no threshold, is not PROCESSING any more, has not resolved its
    `failureSampleSize` yet, or fails no more than its `failureThreshold`."""
    threshold = campaign.failure_threshold
    if threshold is None or now.status is not CampaignStatus.PROCESSING:
        return None
    rate = guard_rate(baseline, now, campaign.failure_sample_size)
    if rate is None or rate <= threshold:
        return None
    resolved = (now.sent - baseline.sent) + (now.failed - baseline.failed)
    return f"Failure rate {rate:.1%} is above {threshold:.1%} after {resolved} attempts."
