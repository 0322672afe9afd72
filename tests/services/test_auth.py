"""services.auth on the real database: workspaces and their keys (stored only as SHA-256
digests), authentication with its per-process cache and its lastUsedAt writes, and the
bearer header."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime

import pytest
from tortoise.exceptions import ValidationError

from domain.access import ALL_SCOPES, Scope
from models import ApiKey, Workspace
from services import auth
from services.auth import (
    KEY_PREFIX,
    Principal,
    authenticate,
    bearer_token,
    create_workspace,
    forget,
    hash_key,
    new_key,
    principal_of,
)
from tests.conftest import Api
from tests.waiting import until

READ_SEND = frozenset({Scope.SEND, Scope.READ})


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex}"


async def revoke(key: str) -> None:
    """Revoked in the database, as another process would revoke it."""
    assert await ApiKey.filter(key_hash=hash_key(key)).update(revoked_at=datetime.now(UTC)) == 1


async def refused(key: str) -> bool:
    return await authenticate(key) is None


async def accepted(key: str) -> bool:
    return await authenticate(key) is not None


def test_a_key_hash_is_the_hex_sha256_of_the_key() -> None:
    assert hash_key("cmp_abc") == hashlib.sha256(b"cmp_abc").hexdigest()
    assert hash_key("cmp_abc") != hash_key("cmp_abd")


async def test_a_new_workspace_gets_a_trimmed_name_and_one_all_scopes_key_stored_as_its_digest(api: Api) -> None:
    name = unique("Acme")
    workspace, key = await create_workspace(f"  {name}\t", "ci")
    assert (await Workspace.get(id=workspace.id)).name == name
    assert key.startswith(KEY_PREFIX) and len(key) > 40
    [row] = await ApiKey.filter(workspace_id=workspace.id)
    assert (row.name, row.prefix, row.key_hash, row.scopes, row.revoked_at) == (
        "ci",
        key[:12],
        hash_key(key),
        "read,write,send,admin",
        None,
    )
    stored = [str(v) for v in (await ApiKey.filter(id=row.id).values())[0].values()]
    assert key not in stored  # shown once, never stored
    assert await authenticate(key) == Principal(workspace.id, "ci", ALL_SCOPES, row.id)


async def test_an_empty_workspace_name_is_refused_and_nothing_is_created(api: Api) -> None:
    before = await Workspace.all().count()
    with pytest.raises(ValueError, match="must not be empty"):
        await create_workspace(" \n ")
    assert await Workspace.all().count() == before


async def test_a_workspace_whose_key_cannot_be_created_is_rolled_back(api: Api) -> None:
    name = unique("Half done")
    with pytest.raises(ValidationError):
        await create_workspace(name, "k" * 201)  # ApiKey.name holds 200 characters
    assert not await Workspace.exists(name=name)


async def test_a_new_key_authenticates_with_its_own_name_and_scopes(api: Api) -> None:
    key, row = await new_key(api.principal.workspace_id, "reporting", READ_SEND)
    assert key != api.key and row.scopes == "read,send"  # the fixed order, whatever the set's
    assert await authenticate(key) == Principal(api.principal.workspace_id, "reporting", READ_SEND, row.id)
    assert await principal_of(hash_key(key)) == await authenticate(key)


@pytest.mark.parametrize(
    "key",
    [None, "", "abc", "Bearer cmp_x", KEY_PREFIX + "x" * 197, "cmp_not-a-key-anyone-was-given"],
    ids=["none", "empty", "no-prefix", "header-not-token", "too-long", "unknown"],
)
async def test_a_missing_malformed_or_unknown_key_authenticates_nobody(api: Api, key: str | None) -> None:
    assert await authenticate(key) is None


async def test_a_key_revoked_before_its_first_use_is_refused_at_once(api: Api) -> None:
    key, _ = await new_key(api.principal.workspace_id, "leaked", ALL_SCOPES)
    await revoke(key)
    assert await authenticate(key) is None
    assert await authenticate(api.key) is not None  # the workspace's other key still works


async def test_a_key_revoked_elsewhere_works_here_until_its_cache_entry_expires(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "CACHE_S", 1.0)
    key, row = await new_key(api.principal.workspace_id, "rotating", ALL_SCOPES)
    assert await authenticate(key) is not None  # verified once: cached
    await revoke(key)
    assert await authenticate(key) == Principal(api.principal.workspace_id, "rotating", ALL_SCOPES, row.id)
    await until(lambda: refused(key), timeout=5, what="the revoked key refused")


async def test_forget_makes_a_revocation_in_this_process_immediate_for_that_key_only(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "CACHE_S", 60.0)
    key, row = await new_key(api.principal.workspace_id, "revoked-here", ALL_SCOPES)
    other, _ = await new_key(api.principal.workspace_id, "kept", ALL_SCOPES)
    assert await authenticate(key) is not None and await authenticate(other) is not None
    await revoke(key)
    await revoke(other)
    forget(row.id)
    assert await authenticate(key) is None
    assert await authenticate(other) is not None  # still its cached answer: not forgotten


async def test_an_unknown_key_stays_refused_until_its_cache_entry_expires(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "CACHE_S", 1.0)
    key = KEY_PREFIX + uuid.uuid4().hex
    assert await authenticate(key) is None  # a miss is cached too
    await ApiKey.create(workspace_id=api.principal.workspace_id, name="late", prefix=key[:12], key_hash=hash_key(key))
    assert await authenticate(key) is None
    await until(lambda: accepted(key), timeout=5, what="the new key accepted")


async def test_last_used_at_is_written_on_first_use_then_at_most_once_per_interval(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, row = await new_key(api.principal.workspace_id, "used", ALL_SCOPES)
    assert row.last_used_at is None
    assert await authenticate(key) is not None
    assert (await ApiKey.get(id=row.id)).last_used_at is not None
    await ApiKey.filter(id=row.id).update(last_used_at=None)
    forget(row.id)  # a cache miss: read from the database again, within the interval
    assert await authenticate(key) is not None
    assert (await ApiKey.get(id=row.id)).last_used_at is None
    monkeypatch.setattr(auth, "LAST_USED_EVERY_S", 0.0)
    forget(row.id)
    assert await authenticate(key) is not None
    assert (await ApiKey.get(id=row.id)).last_used_at is not None


async def test_the_cache_keeps_at_most_its_size_and_drops_the_oldest_entries(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "CACHE_S", 60.0)
    monkeypatch.setattr(auth, "_CACHE_SIZE", 2)
    oldest, middle, newest = [(await new_key(api.principal.workspace_id, f"k{i}", ALL_SCOPES))[0] for i in range(3)]
    for key in (oldest, middle, newest):
        assert await authenticate(key) is not None
    await revoke(oldest)
    await revoke(newest)
    assert await authenticate(oldest) is None  # evicted: read again from the database
    assert await authenticate(newest) is not None  # still cached


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("Bearer cmp_abc", "cmp_abc"),
        ("bearer cmp_abc", "cmp_abc"),
        ("BEARER   cmp_abc  ", "cmp_abc"),
        ("Bearer ", None),
        ("Bearer", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearercmp_abc", None),
    ],
)
def test_bearer_token_takes_only_the_bearer_schemes_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


async def test_requests_for_a_key_not_in_the_cache_share_one_lookup(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    key, row = await new_key(api.principal.workspace_id, "busy", ALL_SCOPES)
    lookups = 0
    load = auth._load

    async def counted(digest: str, now: float) -> Principal | None:
        nonlocal lookups
        lookups += 1
        return await load(digest, now)

    monkeypatch.setattr(auth, "_load", counted)
    principals = await asyncio.gather(*(authenticate(key) for _ in range(20)))
    assert lookups == 1
    assert principals == [Principal(api.principal.workspace_id, "busy", ALL_SCOPES, row.id)] * 20
    assert auth._loading == {}  # nothing left in flight


async def test_a_lookup_in_flight_when_its_key_is_forgotten_is_not_cached_nor_joined(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "CACHE_S", 60.0)
    key, row = await new_key(api.principal.workspace_id, "revoked-meanwhile", ALL_SCOPES)
    started, release = asyncio.Event(), asyncio.Event()
    load = auth._load

    async def slow(digest: str, now: float) -> Principal | None:
        started.set()
        await release.wait()
        return await load(digest, now)

    monkeypatch.setattr(auth, "_load", slow)
    early = asyncio.ensure_future(authenticate(key))
    await asyncio.wait_for(started.wait(), 5)
    await revoke(key)
    forget(row.id)  # revoked here while the lookup waited (it read the row before the revocation)
    monkeypatch.setattr(auth, "_load", load)
    assert await authenticate(key) is None  # a new lookup, not the one in flight
    release.set()
    await asyncio.wait_for(early, 5)
    assert await authenticate(key) is None  # the early lookup's answer was not cached


async def test_a_waiter_cancelled_does_not_cancel_the_lookup_the_others_wait_for(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = await new_key(api.principal.workspace_id, "patient", ALL_SCOPES)
    release = asyncio.Event()
    load = auth._load

    async def slow(digest: str, now: float) -> Principal | None:
        await release.wait()
        return await load(digest, now)

    monkeypatch.setattr(auth, "_load", slow)
    leaving, staying = asyncio.ensure_future(authenticate(key)), asyncio.ensure_future(authenticate(key))
    await asyncio.sleep(0)  # both wait on the one lookup
    leaving.cancel()
    release.set()
    assert await asyncio.wait_for(staying, 5) is not None
