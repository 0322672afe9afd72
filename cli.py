"""The `campaigns` command."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from settings import Settings

DEV_DIR = Path("data")
DEV_KEY_FILE = DEV_DIR / "dev-api-key"


def _uvicorn_config(app: Any, host: str, port: int, **extra: Any) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        ws_per_message_deflate=False,  # 25 KiB per idle socket instead of 59
        ws_ping_interval=20,  # strawberry sends no pings on graphql-transport-ws
        ws_ping_timeout=20,
        **extra,
    )


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from server import create_app

    settings = Settings.from_env()
    asyncio.run(_migrate(settings)) if args.migrate else None
    config = _uvicorn_config(create_app(settings), args.host, args.port, workers=1)
    uvicorn.Server(config).run()  # type: ignore[arg-type]


async def _migrate(settings: Settings) -> None:
    from runtime.database import migrate

    await migrate(settings)


def cmd_migrate(_args: argparse.Namespace) -> None:
    settings = Settings.from_env()
    asyncio.run(_migrate(settings))
    print(f"migrations applied to {settings.database_url}")


async def _create_workspace(settings: Settings, name: str) -> str:
    from runtime.database import orm
    from services.auth import create_workspace

    async with orm(settings):
        _workspace, key = await create_workspace(name)
    return key


def cmd_create_workspace(args: argparse.Namespace) -> None:
    settings = Settings.from_env()
    try:
        key = asyncio.run(_create_workspace(settings, args.name))
    except ValueError as exc:
        sys.exit(f"campaigns: {exc}")
    print(f"workspace {args.name!r} created; its API key (shown once):")
    print(key)


def cmd_export_schema(_args: argparse.Namespace) -> None:
    from strawberry.printer import print_schema

    from schema.app import schema

    print(print_schema(schema))


async def _dev_key(settings: Settings) -> str:
    """The development key: created once, kept in data/dev-api-key (the database
    stores only its hash)."""
    from runtime.database import orm
    from services.auth import authenticate, create_workspace

    async with orm(settings):
        if DEV_KEY_FILE.exists():
            key = DEV_KEY_FILE.read_text().strip()
            if await authenticate(key):
                return key
        _workspace, key = await create_workspace("Development", "dev")
    DEV_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    DEV_KEY_FILE.write_text(key + "\n")
    DEV_KEY_FILE.chmod(0o600)
    return key


def cmd_dev(args: argparse.Namespace) -> None:
    from runtime.embedded_redis import EmbeddedRedis

    settings = Settings.from_env()
    redis = None
    if settings.redis_url is None:
        redis = EmbeddedRedis(DEV_DIR)
        settings = dataclasses.replace(settings, redis_url=redis.start())
        os.environ["REDIS_URL"] = settings.redis_url or ""
    try:
        asyncio.run(_dev(settings, args.host, args.port))
    except KeyboardInterrupt:
        pass
    finally:
        if redis is not None:
            redis.stop()


async def _dev(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from server import create_app

    await _migrate(settings)
    key = await _dev_key(settings)
    base = f"http://{host}:{port}"
    print(
        "\n".join(
            [
                "campaigns dev is running (stop with Ctrl-C)",
                f"  GraphQL + GraphiQL  {base}/graphql",
                f"  health              {base}/healthz  {base}/readyz  {base}/metrics",
                f"  database            {settings.database_url}",
                f"  redis               {settings.redis_url}",
                "  API key (send as 'Authorization: Bearer <key>'):",
                f"  {key}",
            ]
        ),
        flush=True,
    )
    server = uvicorn.Server(_uvicorn_config(create_app(settings), host, port))  # type: ignore[arg-type]
    await server.serve()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="campaigns", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def server_args(p: argparse.ArgumentParser, port: int) -> None:
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=port)

    p = sub.add_parser("dev", help="everything on embedded defaults: SQLite, embedded Redis, API")
    server_args(p, 8000)
    p.set_defaults(func=cmd_dev)
    p = sub.add_parser("serve", help="the API server")
    server_args(p, 8000)
    p.add_argument("--migrate", action="store_true", help="apply migrations first")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("create-workspace", help="create a workspace; prints its API key last")
    p.add_argument("name")
    p.set_defaults(func=cmd_create_workspace)
    p = sub.add_parser("export-schema", help="print the served GraphQL SDL")
    p.set_defaults(func=cmd_export_schema)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
