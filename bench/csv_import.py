"""CSV import throughput through `POST /campaigns/{id}/recipients`, against a raw COPY.

    python bench/csv_import.py [--rows 1000000] [--database-url postgres://...] [--strict]

Drops and recreates the benchmark database, migrates it, creates a workspace, a key and
two DRAFT campaigns, builds the CSV (phone,name,code) and the raw records in memory, then:
  raw:    one asyncpg `copy_records_to_table` of the same rows into the second campaign
          (records built before timing: the database's share of the work only);
  import: the CSV POSTed to the app, served by uvicorn in this process on a loopback port
          (timed from the first byte sent to the response: spool, parse, validate, COPY).
The raw COPY runs first, so the import writes into the table that already holds those rows
(the conservative order); VACUUM + CHECKPOINT precede each timed phase.
Target: import rows/s >= 0.50 x raw rows/s.
`--profile FILE` writes a cProfile of the event-loop thread during the import only.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import random
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import uvicorn
from benchkit import free_port, recreate_database, revision

from domain.ids import to_global_id
from domain.phones import normalize_phone
from runtime.database import migrate, orm
from server import create_app
from services.auth import Principal, create_workspace
from services.campaigns import create_campaign
from settings import Settings

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/campaigns_bench"
TARGET = 0.50
# US area codes (all valid per libphonenumber); exchanges 200-999 except N11 codes.
AREAS = ("415", "650", "408", "510", "212", "646", "312", "617", "206", "303", "512", "404")
EXCHANGES = tuple(str(x) for x in range(200, 1000) if x % 100 != 11)
COLUMNS = ["campaign_id", "phone", "variables", "status", "attempts"]
Record = tuple[int, str, str, str, int]


def phones(n: int) -> Iterator[str]:
    """n distinct E.164 numbers, spread over area codes and exchanges."""
    capacity = len(AREAS) * len(EXCHANGES) * 10_000
    if n > capacity:
        raise SystemExit(f"--rows is limited to {capacity:,}")
    for i in range(n):
        area, j = AREAS[i % len(AREAS)], i // len(AREAS)
        yield f"+1{area}{EXCHANGES[j % len(EXCHANGES)]}{j // len(EXCHANGES):04d}"


def build_rows(n: int) -> tuple[bytes, list[str], list[str]]:
    """(CSV bytes, the phones, the variables JSON of each row as the service stores it)."""
    numbers = list(phones(n))
    lines = ["phone,name,code"]
    variables: list[str] = []
    for i, phone in enumerate(numbers):
        name, code = f"Customer {i}", f"C{i:07d}"
        lines.append(f"{phone},{name},{code}")
        variables.append(json.dumps({"name": name, "code": code}, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode(), numbers, variables


async def setup(settings: Settings) -> tuple[str, int, int]:
    """(API key, import campaign id, raw campaign id)."""
    await migrate(settings)
    async with orm(settings):
        workspace, key = await create_workspace("bench")
        principal = Principal(workspace.id, "bench")
        body = {"body": "Hello {{name}}, your code is {{code}}"}
        imported = await create_campaign(principal, {"name": "csv import", **body})
        raw = await create_campaign(principal, {"name": "raw copy", **body})
    return key, imported.id, raw.id


async def settle(url: str) -> None:
    """Vacuum and checkpoint, so neither timed phase pays for the other's aftermath
    (autovacuum of the rows just loaded, a checkpoint triggered by their WAL)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM (ANALYZE) message")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def raw_copy(url: str, records: list[Record]) -> float:
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("message", records=records, columns=COLUMNS)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def http_import(
    settings: Settings, key: str, campaign_id: int, payload: bytes, profile: str | None
) -> tuple[float, dict[str, object]]:
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()
                raise RuntimeError("uvicorn exited before starting")
            await asyncio.sleep(0.05)
        url = f"http://127.0.0.1:{port}/campaigns/{to_global_id('Campaign', campaign_id)}/recipients"
        headers = {"Content-Type": "text/csv", "Authorization": f"Bearer {key}"}
        profiler = cProfile.Profile() if profile else None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
            if profiler:
                profiler.enable()
            started = time.perf_counter()
            async with http.post(url, data=payload, headers=headers) as response:
                body = await response.json()
                elapsed = time.perf_counter() - started
            if profiler and profile:
                profiler.disable()
                profiler.dump_stats(profile)
            if response.status != 200:
                raise RuntimeError(f"import answered HTTP {response.status}: {body}")
        return elapsed, body
    finally:
        server.should_exit = True
        await serving


async def counts(url: str, campaign_id: int) -> tuple[int, int, int]:
    """(campaign.total, campaign.pending, message rows) of a campaign."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("SELECT total, pending FROM campaign WHERE id = $1", campaign_id)
        n = await conn.fetchval("SELECT COUNT(*) FROM message WHERE campaign_id = $1", campaign_id)
        return int(row["total"]), int(row["pending"]), int(n)
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> int:
    n, url = args.rows, args.database_url
    settings = Settings(database_url=url)
    print(f"code {revision()}; database {urlsplit(url).path.lstrip('/')} (dropped and recreated), {n:,} rows")
    await recreate_database(url)
    key, import_id, raw_id = await setup(settings)

    started = time.perf_counter()
    payload, numbers, variables = build_rows(n)
    sample = random.Random(7).sample(numbers, min(n, 10_000))
    bad = [p for p in sample if normalize_phone(p) != p]
    if bad:
        raise SystemExit(f"generated phones that normalize_phone rejects or rewrites: {bad[:5]}")
    records: list[Record] = [(raw_id, p, v, "PENDING", 0) for p, v in zip(numbers, variables, strict=True)]
    del numbers, variables
    built_s = time.perf_counter() - started
    print(f"built {len(payload) / 1e6:.1f} MB of CSV and {n:,} records in {built_s:.1f} s")

    await settle(url)
    raw_s = await raw_copy(url, records)
    del records
    raw_rate = n / raw_s
    print(f"raw COPY: {n:,} rows in {raw_s:.2f} s = {raw_rate:,.0f} rows/s")

    await settle(url)
    import_s, report = await http_import(settings, key, import_id, payload, args.profile)
    import_rate = n / import_s
    summary = {k: report[k] for k in ("added", "duplicates", "optedOut", "invalidCount")}
    print(f"import: {n:,} rows in {import_s:.2f} s = {import_rate:,.0f} rows/s  {summary}")

    total, pending, rows = await counts(url, import_id)
    consistent = total == rows == pending == n and report["added"] == n
    print(
        f"check: campaign total={total:,} pending={pending:,} message rows={rows:,} "
        f"-> {'OK' if consistent else 'MISMATCH'}"
    )
    ratio = import_rate / raw_rate
    passed = ratio >= TARGET and consistent
    print(f"ratio import/raw {ratio:.2f} (target >= {TARGET:.2f}) {'PASS' if passed else 'FAIL'}")
    if args.profile:
        print(f"profile of the import written to {args.profile}")
    return 1 if args.strict and not passed else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=DEFAULT_URL, help="dropped and recreated")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the import into FILE")
    parser.add_argument("--strict", action="store_true", help="exit 1 on FAIL")
    return parser.parse_args()


def run() -> int:
    args = parse_args()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main(args))
    return uvloop.run(main(args))


if __name__ == "__main__":
    sys.exit(run())
