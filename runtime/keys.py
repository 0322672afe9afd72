"""Every Redis key, channel and job name, in one place (as arq keeps its constants)."""

from __future__ import annotations

#: arq queue the workers listen on
QUEUE = "campaigns:queue"

# Job functions (names registered with arq)
JOB_START_SCHEDULED = "start_scheduled"
JOB_RUN_CAMPAIGN = "run_campaign"
JOB_SWEEP = "sweep"


def start_job_id(campaign_id: int, token: str) -> str:
    """Deterministic: a reschedule changes the token, so the stale job id never runs twice
    and the new one is distinct."""
    return f"campaigns:start:{campaign_id}:{token}"


def run_job_id(campaign_id: int, version: int, fence: int) -> str:
    """One run job per campaign state: its version (a resume gets a new one) and its
    lease fence (a run that took the lease and died gets a new one). Enqueued again
    for the same state, arq keeps the one already queued (keep_result=0 frees the id
    once the job ends)."""
    return f"campaigns:run:{campaign_id}:{version}:{fence}"


def wake_job_id(campaign_id: int, version: int, fence: int, at: float) -> str:
    """A run job deferred to the time a waiting campaign's next message may go out
    (domain/waiting.py): one per campaign state and time, so a run ending WAITING twice
    for the same time queues it once; the sweep's run job is the fallback."""
    return f"campaigns:wake:{campaign_id}:{version}:{fence}:{int(at)}"


def control_channel(campaign_id: int) -> str:
    """Pause/cancel reach the worker holding the campaign's lease here."""
    return f"campaigns:control:{campaign_id}"


CONTROL_PATTERN = "campaigns:control:*"


def control_ack_key(campaign_id: int, nonce: str) -> str:
    """The lease holder pushes here once no new send can start."""
    return f"campaigns:control-ack:{campaign_id}:{nonce}"


def progress_channel(campaign_id: int) -> str:
    return f"campaigns:progress:{campaign_id}"


def workspace_channel(workspace_id: int) -> str:
    return f"campaigns:status:{workspace_id}"


def account_rate_key(account: str) -> str:
    """Shared by all workers: the provider account's messages-per-second budget."""
    return f"campaigns:rate:{account}"


PROGRESS_PATTERN = "campaigns:progress:*"
STATUS_PATTERN = "campaigns:status:*"
