"""Migrations and one-off ORM sessions for commands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tortoise import Tortoise
from tortoise.migrations.api import migrate as tortoise_migrate

from settings import Settings


async def migrate(settings: Settings) -> None:
    """Apply the built-in Tortoise migrations (idempotent)."""
    await tortoise_migrate(config=settings.tortoise_config())
    await Tortoise.close_connections()


@asynccontextmanager
async def orm(settings: Settings) -> AsyncIterator[None]:
    """The ORM for a command's lifetime, closed from the same task context."""
    await Tortoise.init(config=settings.tortoise_config())
    try:
        yield
    finally:
        await Tortoise.close_connections()
