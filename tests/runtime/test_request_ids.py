"""runtime/request_ids.py: the request id is a context variable, "-" outside a request,
seen by everything the request's task runs and by nothing else; new ids are unique,
within a process (also across threads) and between processes."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from runtime.request_ids import REQUEST_ID, current_request_id, new_request_id

ROOT = Path(__file__).resolve().parents[2]


def test_outside_a_request_the_id_is_a_dash() -> None:
    assert contextvars.Context().run(current_request_id) == "-"


async def test_concurrent_requests_each_see_their_own_id_and_it_does_not_leak() -> None:
    both = asyncio.Barrier(2)
    seen: dict[str, list[str]] = {}

    async def log_line() -> str:  # what the log formatter does, deeper in the request
        await asyncio.sleep(0)
        return current_request_id()

    async def request(rid: str) -> None:
        REQUEST_ID.set(rid)  # what the middleware does
        await both.wait()  # the other request has set its id too
        seen[rid] = [current_request_id(), await log_line(), await asyncio.create_task(log_line())]

    outside = current_request_id()
    await asyncio.gather(request("req-a"), request("req-b"))
    assert seen == {"req-a": ["req-a"] * 3, "req-b": ["req-b"] * 3}
    assert current_request_id() == outside  # the caller's context is untouched


def test_new_ids_are_unique_and_printable_in_a_header() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for rid in ids[:100] + ids[-100:]:
        assert rid.isascii() and rid.isalnum() and len(rid) >= 16


def test_new_ids_are_unique_across_threads() -> None:
    """Webhook handling and the API may mint ids from several threads."""
    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(lambda _: [new_request_id() for _ in range(2_000)], range(8)))
    ids = [rid for batch in batches for rid in batch]
    assert len(set(ids)) == len(ids)


def first_ids_of_a_new_process(n: int = 3) -> list[str]:
    code = f"from runtime.request_ids import new_request_id as new; print(*(new() for _ in range({n})))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    ids = done.stdout.split()
    assert len(ids) == n
    return ids


def test_two_processes_do_not_mint_the_same_ids() -> None:
    """Two replicas started alike (each counting afresh) still mint different ids."""
    one, other = first_ids_of_a_new_process(), first_ids_of_a_new_process()
    assert not set(one) & set(other)
