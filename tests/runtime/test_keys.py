"""runtime/keys.py: every Redis name the service uses, built in one place. Distinct
inputs give distinct names (no builder's output is another's), every name lives under
the project's `campaigns:` prefix, each subscription pattern catches its own channels
and nothing else (checked on a real Redis), and the deterministic job ids dedupe in
arq as their docstrings say."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import AsyncIterator, Callable

import pytest_asyncio
from arq.connections import ArqRedis
from redis.asyncio import Redis

from jobs.worker import worker_settings
from runtime import keys
from settings import Settings

PREFIX = "campaigns:"  # QUEUE's namespace: every key and channel shares it

#: ids chosen so that gluing fields without a separator would collide (1|23 vs 12|3)
IDS = [1, 2, 3, 12, 21, 23, 123, 2**40]
TOKENS = ["a", "b", "ab", "1", "23", "x:y"]
ACCOUNTS = ["1", "12", "123456789", "acct:2", ""]


def every_name() -> dict[str, tuple[str, tuple[object, ...]]]:
    """Each built name, mapped to the builder and the inputs that made it."""
    built: list[tuple[str, tuple[object, ...], str]] = []

    def add(builder: Callable[..., str], *args: object) -> None:
        built.append((builder.__name__, args, builder(*args)))

    for i in IDS:
        add(keys.control_channel, i)
        add(keys.progress_channel, i)
        add(keys.workspace_channel, i)
        for token in TOKENS:
            add(keys.start_job_id, i, token)
            add(keys.control_ack_key, i, token)
    for i, version, fence in itertools.product(IDS[:5], IDS[:5], IDS[:5]):
        add(keys.run_job_id, i, version, fence)
    for account in ACCOUNTS:
        add(keys.account_rate_key, account)

    names: dict[str, tuple[str, tuple[object, ...]]] = {}
    for builder, args, name in built:
        assert name not in names, f"{builder}{args} and {names[name][0]}{names[name][1]} both give {name!r}"
        names[name] = (builder, args)
    return names


def test_distinct_inputs_to_any_builders_give_distinct_names() -> None:
    names = every_name()
    constants = {keys.QUEUE, keys.CONTROL_PATTERN, keys.PROGRESS_PATTERN, keys.STATUS_PATTERN}
    assert len(constants) == 4
    assert not constants & set(names)


def test_the_same_inputs_give_the_same_name() -> None:
    """Job ids must be deterministic: arq dedupes on them."""
    assert keys.start_job_id(7, "t0k3n") == keys.start_job_id(7, "t0k3n")
    assert keys.run_job_id(7, 3, 2) == keys.run_job_id(7, 3, 2)
    # and every field of the campaign's state is part of the id
    assert (
        len({keys.run_job_id(7, 3, 2), keys.run_job_id(8, 3, 2), keys.run_job_id(7, 4, 2), keys.run_job_id(7, 3, 3)})
        == 4
    )
    assert keys.start_job_id(7, "old") != keys.start_job_id(7, "new")


def test_every_key_and_channel_is_under_the_project_prefix() -> None:
    assert keys.QUEUE.startswith(PREFIX)
    for pattern in (keys.CONTROL_PATTERN, keys.PROGRESS_PATTERN, keys.STATUS_PATTERN):
        assert pattern.startswith(PREFIX)
    for name in every_name():
        assert name.startswith(PREFIX), name
        # arq keeps its own keys under "arq:"; ours never reach into that namespace
        assert not name.startswith("arq:")


def test_the_campaign_id_is_the_control_channels_last_segment() -> None:
    """jobs/control.py reads the campaign back from a pattern message's channel so."""
    for campaign_id in IDS:
        channel = keys.control_channel(campaign_id)
        assert int(channel.rsplit(":", 1)[1]) == campaign_id


def test_the_job_names_are_the_ones_the_worker_registers() -> None:
    options = worker_settings(Settings())
    registered = {f.name for f in options["functions"]} | {c.name for c in options["cron_jobs"]}
    assert registered == {keys.JOB_START_SCHEDULED, keys.JOB_RUN_CAMPAIGN, keys.JOB_SWEEP}
    assert options["queue_name"] == keys.QUEUE


@pytest_asyncio.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url or "")
    try:
        yield client
    finally:
        await client.aclose()


async def test_each_pattern_receives_its_own_channels_and_no_other(redis: Redis) -> None:
    # Pub/sub ignores the db number: other processes' messages may arrive too, so only
    # this test's (random, unused) ids count. The payload is no JSON, which every
    # listener of the service drops.
    campaign, workspace = (10**12 + secrets.randbelow(10**9) for _ in range(2))
    published = {
        keys.control_channel(campaign): keys.CONTROL_PATTERN,
        keys.progress_channel(campaign): keys.PROGRESS_PATTERN,
        keys.workspace_channel(workspace): keys.STATUS_PATTERN,
        keys.control_ack_key(campaign, "nonce"): None,  # a list key: no pattern may catch it
        keys.account_rate_key(str(campaign)): None,
        keys.start_job_id(campaign, "t"): None,
        keys.run_job_id(campaign, 1, 1): None,
    }
    patterns = (keys.CONTROL_PATTERN, keys.PROGRESS_PATTERN, keys.STATUS_PATTERN)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe(*patterns)
    try:
        for channel in published:
            await redis.publish(channel, b"runtime-keys-test")
        # a marker, published last on each pattern, says everything before it arrived
        markers = {p: p.replace("*", f"marker-{campaign}") for p in patterns}
        for marker in markers.values():
            await redis.publish(marker, b"runtime-keys-test")
        caught: dict[str, set[str]] = {p: set() for p in patterns}
        async with asyncio.timeout(3):
            while not all(markers[p] in caught[p] for p in patterns):
                message = await pubsub.get_message(timeout=1)
                if message is not None and message["type"] == "pmessage":
                    caught[message["pattern"].decode()].add(message["channel"].decode())
    finally:
        await pubsub.aclose()
    for pattern in patterns:
        ours = {c for c in caught[pattern] if c in published}
        assert ours == {c for c, p in published.items() if p == pattern}, pattern


async def test_a_run_job_enqueued_again_for_the_same_state_is_kept_once(settings: Settings) -> None:
    """As run_job_id says: arq keeps the job already queued, and a new state (here a
    new fence) is a new job. On a queue of its own, so no worker of the session runs it."""
    arq = ArqRedis.from_url(settings.redis_url or "")
    queue = f"campaigns:test-runtime-keys:{secrets.token_hex(4)}"
    campaign = 10**12 + secrets.randbelow(10**9)
    ids = [keys.run_job_id(campaign, 3, 1), keys.run_job_id(campaign, 3, 2)]
    try:
        first = await arq.enqueue_job(keys.JOB_RUN_CAMPAIGN, campaign, _job_id=ids[0], _queue_name=queue)
        again = await arq.enqueue_job(keys.JOB_RUN_CAMPAIGN, campaign, _job_id=ids[0], _queue_name=queue)
        fenced = await arq.enqueue_job(keys.JOB_RUN_CAMPAIGN, campaign, _job_id=ids[1], _queue_name=queue)
        assert first is not None and again is None and fenced is not None
        assert await arq.zcard(queue) == 2
    finally:
        await arq.delete(queue, *(f"arq:job:{i}" for i in ids))
        await arq.aclose()
