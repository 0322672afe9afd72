"""Workspaces, and authenticating API keys. Keys are shown once and stored as SHA-256
digests; managing them (create, list, revoke) is services/keys.py."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from domain.access import ALL_SCOPES, Scope, loaded, stored
from models import ApiKey, Workspace
from services import db

KEY_PREFIX = "cmp_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the workspace every read and write is scoped to, the key's name,
    which becomes the actor of the events it causes, and what the key may do. Built by
    hand (the CLI, benchmarks) it may do everything."""

    workspace_id: int
    actor: str
    scopes: frozenset[Scope] = ALL_SCOPES
    key_id: int | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_workspace(name: str, key_name: str = "default") -> tuple[Workspace, str]:
    """A new workspace and its first API key, with every scope (the key is returned,
    never stored)."""
    name = name.strip()
    if not name:
        raise ValueError("workspace name must not be empty")
    async with db.in_transaction():
        workspace = await Workspace.create(name=name)
        key, _ = await new_key(workspace.id, key_name, ALL_SCOPES)
    return workspace, key


async def new_key(workspace_id: int, name: str, scopes: frozenset[Scope]) -> tuple[str, ApiKey]:
    """A new key of the workspace: the secret (shown once) and its row."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = await ApiKey.create(
        workspace_id=workspace_id, name=name, prefix=key[:12], key_hash=hash_key(key), scopes=stored(scopes)
    )
    return key, row


#: Verified keys, per process: the lookup was a fifth of a small query's cost. A key
#: revoked in the database stops working in every process within REVOCATION_S, its
#: open WebSockets included (web/key_watch.py asks this cache every WATCH_EVERY_S):
#: CACHE_S + WATCH_EVERY_S, with room for the query, stays under it.
REVOCATION_S = 1.0
CACHE_S = 0.5
WATCH_EVERY_S = 0.25
LAST_USED_EVERY_S = 60.0  # lastUsedAt is written at most this often per key and process
_CACHE_SIZE = 10_000
_cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()
_last_written: dict[int, float] = {}
#: lookups in flight, by digest; `forget` bumps the generation so none of them is cached
_loading: dict[str, asyncio.Future[Principal | None]] = {}
_generation = 0


async def authenticate(key: str | None) -> Principal | None:
    """The principal of a live key, or None for a missing, unknown or revoked key."""
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    return await principal_of(hash_key(key))


async def principal_of(digest: str) -> Principal | None:
    """The principal of the key with this digest (cached for CACHE_S), or None."""
    now = time.monotonic()
    hit = _cache.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1]
    # One lookup per key at a time: when an entry expires under load, the requests that
    # come while it is read again wait for that read instead of each making their own
    # (32 connections made about 40 lookups a second, a twentieth of the API's CPU).
    loading = _loading.get(digest)
    if loading is None or loading.get_loop() is not asyncio.get_running_loop():
        loading = asyncio.ensure_future(_load(digest, now))
        _loading[digest] = loading
        loading.add_done_callback(partial(_loaded, digest))
    return await asyncio.shield(loading)  # a waiter cancelled does not cancel the others' read


async def _load(digest: str, now: float) -> Principal | None:
    generation = _generation
    live = ApiKey.filter(key_hash=digest, revoked_at__isnull=True)
    row = await live.first().values("id", "workspace_id", "name", "scopes")
    principal = None
    if row:
        principal = Principal(row["workspace_id"], row["name"], loaded(row["scopes"]), row["id"])
        await _touch(row["id"], now)
    if generation == _generation:  # else a key was forgotten meanwhile: this read may predate it
        # unknown keys are cached too, so a flood of them cannot hammer the database
        _cache[digest] = (now + CACHE_S, principal)
        _cache.move_to_end(digest)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return principal


def _loaded(digest: str, task: asyncio.Future[Principal | None]) -> None:
    if _loading.get(digest) is task:
        del _loading[digest]
    if not task.cancelled():
        task.exception()  # retrieved: its waiters got it, or all left


def forget(key_id: int) -> None:
    """Drop a key from this process's cache (it was just revoked here); lookups in
    flight are not joined by later requests, nor cached."""
    global _generation
    _generation += 1
    _loading.clear()
    for digest in [d for d, (_, p) in _cache.items() if p is not None and p.key_id == key_id]:
        del _cache[digest]


async def _touch(key_id: int, now: float) -> None:
    if now - _last_written.get(key_id, -LAST_USED_EVERY_S) < LAST_USED_EVERY_S:
        return
    _last_written[key_id] = now
    if len(_last_written) > _CACHE_SIZE:
        _last_written.clear()
    await ApiKey.filter(id=key_id).update(last_used_at=datetime.now(UTC))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
