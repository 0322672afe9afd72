"""The `campaigns` command."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from settings import ConfigError, Settings

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
        # Nothing here reads the client's address (no access log), so uvicorn's
        # X-Forwarded-* middleware would only cost every request (4% of a webhook's CPU).
        proxy_headers=False,
        **extra,
    )


def _production_settings(command: str) -> Settings:
    """The environment's settings, refused (exit 2, naming the variable) where a secret
    is empty or the development one: only `campaigns dev` runs with those."""
    from services.tokens import TokenBox, TokenKeyError

    try:
        settings = Settings.from_env()
        settings.check_production(command)
        TokenBox(settings.sender_token_key)  # a key that cannot seal is refused now, not at the first connect
    except (ConfigError, TokenKeyError) as exc:
        print(f"campaigns {command}: {exc}", file=sys.stderr)
        sys.exit(2)
    return settings


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from server import create_app

    settings = _production_settings("serve")
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
    print(f"workspace {args.name!r} created; its API key, with every scope (shown once):")
    print(key)


async def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from domain.errors import DomainError
    from domain.ids import parse_global_id, to_global_id
    from models import Workspace
    from runtime.database import orm
    from services import keys
    from services.auth import Principal

    async with orm(settings):
        where = {"id": int(args.workspace)} if args.workspace.isdigit() else {"name": args.workspace}
        workspaces = await Workspace.filter(**where)
        if len(workspaces) != 1:
            found = "no" if not workspaces else "more than one"
            print(f"campaigns keys: {found} workspace {args.workspace!r}; give its id", file=sys.stderr)
            return 2
        workspace = workspaces[0]
        try:
            if args.keys_command == "list":
                for key in await keys.list_keys(workspace.id):
                    state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "live"
                    used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
                    scopes = ",".join(sorted(key.scopes))
                    gid = to_global_id("ApiKey", key.id)
                    print(f"{gid}  {key.prefix}…  {key.name!r}  [{scopes}]  used {used}  {state}")
            elif args.keys_command == "create":
                principal = Principal(workspace.id, "cli")
                view, secret = await keys.create_key(principal, args.name, args.scopes.split(","))
                print(f"key {view.name!r} ({to_global_id('ApiKey', view.id)}) created; the key (shown once):")
                print(secret)
            else:
                parsed = parse_global_id(args.id)
                pk = parsed[1] if parsed is not None and parsed[0] == "ApiKey" else -1
                view = await keys.revoke_key(workspace.id, pk, allow_last_admin=args.allow_last_admin)
                print(f"key {view.name!r} revoked")
        except DomainError as error:
            print(f"campaigns keys {args.keys_command}: {error.message}", file=sys.stderr)
            return 1
    return 0


def cmd_keys(args: argparse.Namespace) -> None:
    sys.exit(asyncio.run(_keys(Settings.from_env(), args)))


def cmd_worker(_args: argparse.Namespace) -> None:
    from redis.exceptions import RedisError

    from jobs.worker import CampaignWorker, worker_settings
    from web.observability import configure_logging

    settings = _production_settings("worker")
    if settings.redis_url is None:
        sys.exit("campaigns worker: set REDIS_URL (the worker takes its jobs from Redis)")
    configure_logging(settings.log_level)
    log = logging.getLogger("campaigns.worker")
    while True:
        try:
            # SIGTERM/SIGINT drain the runs (jobs/worker.py); a Redis outage while
            # running pauses the poll loop instead of ending it
            CampaignWorker(**worker_settings(settings)).run()
            return
        except (RedisError, OSError) as exc:
            # Redis was away when the worker started: the database holds the truth, so
            # start again and let the sweep pick up what was running.
            log.error("worker cannot reach Redis (%s); starting again in 2 s", exc)
            time.sleep(2)


def _simulator_config(args: argparse.Namespace, webhook_url: str | None) -> Any:
    from simulator.config import SimulatorConfig, parse_mix

    base = SimulatorConfig.from_env()
    changes: dict[str, Any] = {"webhook_url": webhook_url or base.webhook_url}
    if args.latency_ms is not None:
        changes["latency_mean_ms"] = args.latency_ms
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.rate_limit is not None:
        changes["rate_limit_per_second"] = args.rate_limit
    if args.error_mix is not None:
        changes["error_mix"] = parse_mix(args.error_mix)
    return dataclasses.replace(base, **changes)


def cmd_simulator(args: argparse.Namespace) -> None:
    import uvicorn

    from simulator.app import create_simulator_app

    config = _simulator_config(args, args.webhook_url)
    print(f"WhatsApp simulator on http://{args.host}:{args.port} (ledger: /_simulator/ledger)", flush=True)
    uvicorn.run(create_simulator_app(config), host=args.host, port=args.port, access_log=False, log_level="warning")


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


async def _dev_sender(settings: Settings, key: str, config: Any) -> None:
    """The development workspace sends from the simulator's number, connected as a
    sender (GraphQL `senders` shows it) without a lookup: the simulator is ours."""
    from domain.senders import Tier, parse_tier
    from runtime.database import orm
    from services.auth import authenticate
    from services.senders import ensure_sender
    from services.tokens import TokenBox

    async with orm(settings):
        principal = await authenticate(key)
        assert principal is not None
        await ensure_sender(
            principal.workspace_id,
            TokenBox(settings.sender_token_key),
            name="Simulator",
            waba_id=config.waba_id,
            phone_number_id=config.phone_number_id,
            display_phone_number=config.display_phone_number,
            access_token=config.access_token,
            # the rate dev sent at before senders existed (WHATSAPP_RATE_LIMIT)
            throughput=min(settings.whatsapp_rate_limit, 1000),
            tier=parse_tier(getattr(config, "messaging_limit_tier", None)) or Tier.TIER_250,
        )


async def _dev_templates(server: Any, app: Any, key: str) -> None:
    """Once the server answers (the simulator is mounted in it), read the development
    sender's templates from the simulator, as connectSender does for a real sender."""
    from services.auth import authenticate
    from services.senders import list_senders
    from services.templates import sync

    while not server.started:  # noqa: ASYNC110 (uvicorn's Server has only this flag)
        await asyncio.sleep(0.05)
    try:
        principal = await authenticate(key)
        assert principal is not None
        for sender in await list_senders(principal.workspace_id):
            await sync(principal.workspace_id, sender.id, app.state.token_box, app.state.provider)
    except Exception as exc:  # the development service runs without them
        print(f"campaigns dev: could not read the simulator's templates ({exc})", file=sys.stderr, flush=True)


def cmd_dev(args: argparse.Namespace) -> None:
    from runtime.embedded_redis import EmbeddedRedis

    settings = Settings.from_env()
    if "WEBHOOK_ALLOW_PRIVATE_URLS" not in os.environ:
        # development receivers run on this machine (a local tunnel, `nc -l`, a test app)
        settings = dataclasses.replace(settings, webhook_allow_private_urls=True)
    redis = None
    if settings.redis_url is None:
        redis = EmbeddedRedis(DEV_DIR)
        try:
            settings = dataclasses.replace(settings, redis_url=redis.start())
        except RuntimeError as exc:  # it left no server behind
            print(f"campaigns dev: {exc}", file=sys.stderr)
            sys.exit(2)
        os.environ["REDIS_URL"] = settings.redis_url or ""
    # uvicorn re-raises SIGTERM after its graceful shutdown; as SystemExit it lets the
    # finally below stop the embedded Redis instead of leaving it running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        asyncio.run(_dev(settings, args.host, args.port, args))
    except KeyboardInterrupt:
        pass
    finally:
        if redis is not None:
            redis.stop()


async def _dev(settings: Settings, host: str, port: int, args: argparse.Namespace) -> None:
    import uvicorn
    from starlette.routing import Mount

    from jobs.worker import CampaignWorker, worker_settings
    from server import create_app
    from simulator.app import create_simulator_app

    await _migrate(settings)
    key = await _dev_key(settings)
    base = f"http://{host}:{port}"
    simulated = settings.whatsapp_api_base is None
    sim_config = _simulator_config(args, f"{base}/webhooks/whatsapp")
    if simulated:
        settings = dataclasses.replace(settings, whatsapp_api_base=f"{base}/simulator")
        await _dev_sender(settings, key, sim_config)
    app = create_app(settings)
    simulator = None
    if simulated:
        # The simulator answers sends under /simulator and posts receipts to our webhook.
        sim_app = create_simulator_app(sim_config)
        simulator = sim_app.state.simulator
        app.router.routes.insert(0, Mount("/simulator", app=sim_app))
    print(
        "\n".join(
            [
                "campaigns dev is running (stop with Ctrl-C)",
                f"  GraphQL + GraphiQL  {base}/graphql",
                f"  health              {base}/healthz  {base}/readyz  {base}/metrics",
                f"  database            {settings.database_url}",
                f"  redis               {settings.redis_url}",
                f"  provider            {settings.provider_base_url()}"
                + ("  (simulator; ledger at /simulator/_simulator/ledger)" if simulated else ""),
                "  worker              in this process (arq, same event loop)",
                "  API key (send as 'Authorization: Bearer <key>'):",
                f"  {key}",
            ]
        ),
        flush=True,
    )
    server = uvicorn.Server(_uvicorn_config(app, host, port))
    # SQLite has one writer: API, worker and simulator share this loop and connection.
    worker = CampaignWorker(
        **worker_settings(settings, handle_signals=False, ctx={"settings": settings, "shared_orm": True})
    )
    # uvicorn takes the signals: the runs drain before the app closes the ORM under them
    app.state.before_shutdown.append(lambda: worker.drain(settings.worker_drain_timeout_s))
    if simulator is not None:
        await simulator.start()
    worker_task = asyncio.create_task(worker.async_run())
    synced = asyncio.create_task(_dev_templates(server, app, key)) if simulated else None
    try:
        await server.serve()
    finally:
        if synced is not None:
            synced.cancel()
        worker_task.cancel()
        await asyncio.gather(worker_task, *([synced] if synced else []), return_exceptions=True)
        await worker.close()
        if simulator is not None:
            await simulator.stop()


def cmd_watch(args: argparse.Namespace) -> None:
    from watch.app import main as watch

    sys.exit(watch(args))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="campaigns", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def server_args(p: argparse.ArgumentParser, port: int) -> None:
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=port)

    def simulator_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--latency-ms", type=float, default=None, help="mean provider latency")
        p.add_argument("--seed", type=int, default=None)
        p.add_argument("--rate-limit", type=float, default=None, help="messages/s before 130429")
        p.add_argument("--error-mix", default=None, help="e.g. 131026=0.02,131047=0.01")

    p = sub.add_parser("dev", help="everything on embedded defaults: SQLite, Redis, simulator, API, worker")
    server_args(p, 8000)
    simulator_args(p)
    p.set_defaults(func=cmd_dev)
    p = sub.add_parser("worker", help="the arq worker that sends campaigns")
    p.set_defaults(func=cmd_worker)
    p = sub.add_parser("simulator", help="the WhatsApp Cloud API simulator")
    server_args(p, 9000)
    simulator_args(p)
    p.add_argument("--webhook-url", default=None, help="where delivery receipts are posted")
    p.set_defaults(func=cmd_simulator)
    p = sub.add_parser("serve", help="the API server")
    server_args(p, 8000)
    p.add_argument("--migrate", action="store_true", help="apply migrations first")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("create-workspace", help="create a workspace; prints its API key last")
    p.add_argument("name")
    p.set_defaults(func=cmd_create_workspace)
    p = sub.add_parser("keys", help="a workspace's API keys: list, create, revoke")
    p.set_defaults(func=cmd_keys)
    keys = p.add_subparsers(dest="keys_command", required=True)
    k = keys.add_parser("list", help="every key of the workspace, revoked ones too")
    k.add_argument("--workspace", required=True, help="the workspace's id or name")
    k = keys.add_parser("create", help="a new key; prints it last, shown once")
    k.add_argument("--workspace", required=True, help="the workspace's id or name")
    k.add_argument("name")
    k.add_argument("--scopes", default="read", help="comma-separated: read, write, send, admin (default read)")
    k = keys.add_parser("revoke", help="revoke a key at once, in every API process")
    k.add_argument("--workspace", required=True, help="the workspace's id or name")
    k.add_argument("id", help="the key's id, as `keys list` shows it")
    k.add_argument("--allow-last-admin", action="store_true", help="even the workspace's last admin key")
    p = sub.add_parser("watch", help="a campaign's live progress bar in the terminal")
    p.add_argument("id", help="the campaign's id (its global id, as the API returns it)")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the service (ws(s)://…/graphql is derived)")
    p.add_argument("--key", default=None, help="API key; else $CAMPAIGNS_API_KEY, else data/dev-api-key")
    p.add_argument("--settle", type=float, default=5.0, help="seconds without change after a terminal status")
    p.set_defaults(func=cmd_watch)
    p = sub.add_parser("export-schema", help="print the served GraphQL SDL")
    p.set_defaults(func=cmd_export_schema)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
