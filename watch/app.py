"""The command: `campaigns watch ID [--url URL] [--key KEY] [--settle S]` (cli.py parses
the options and calls `main(args)`). Exit status: 0 done; 1 bad key, unknown campaign,
or no connection; 130 on Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from watch.client import ws_url
from watch.display import Display
from watch.watcher import Watcher, WatchError

DEV_KEY_FILE = Path("data") / "dev-api-key"
KEY_ENV = "CAMPAIGNS_API_KEY"


def resolve_key(given: str | None, env: Mapping[str, str], key_file: Path = DEV_KEY_FILE) -> str | None:
    """--key, else $CAMPAIGNS_API_KEY, else the key `campaigns dev` wrote here."""
    for candidate in (given, env.get(KEY_ENV)):
        if candidate and candidate.strip():
            return candidate.strip()
    try:
        return key_file.read_text().strip() or None
    except OSError:
        return None


def main(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run `campaigns watch`; returns the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    key = resolve_key(args.key, os.environ)
    if key is None:
        where = f"pass --key, set {KEY_ENV}, or run where `campaigns dev` wrote {DEV_KEY_FILE}"
        err.write(f"campaigns watch: no API key: {where}\n")
        return 1
    try:
        url = ws_url(args.url)
    except ValueError as exc:
        err.write(f"campaigns watch: {exc}\n")
        return 1
    if args.settle < 0:
        err.write("campaigns watch: --settle must be 0 or more seconds\n")
        return 1
    display = Display(out, err, tty=out.isatty())
    watcher = Watcher(url, key, args.id, display, settle=args.settle)
    try:
        final = asyncio.run(watcher.run())
    except WatchError as exc:
        display.close()
        err.write(f"campaigns watch: {exc}\n")
        return 1
    except KeyboardInterrupt:
        display.close()
        err.write("campaigns watch: interrupted\n")
        return 130
    except BrokenPipeError:  # `campaigns watch ID | head`: the reader left
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    display.finish(final)
    return 0
