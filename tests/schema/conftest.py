"""Fixtures of the GraphQL tests that need a Cloud API: the simulator, as the app's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from starlette.applications import Starlette

from providers.whatsapp import WhatsAppProvider
from tests.simulator.conftest import Sim, running

_serial = iter(range(1, 10**6))
SECOND: dict[str, Any] = {
    "phone_number_id": "",  # one of its own per test (numbers are global): see `sim`
    "waba_id": "200000000000777",
    "display_phone_number": "15550000777",
    "access_token": "EAAG-second-number-token",
    "verified_name": "Second Shop",
    "throughput": 80,
    "messaging_limit_tier": "TIER_2K",
}


@pytest_asyncio.fixture
async def sim(app: Starlette, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sim]:
    """The simulator with a second number, as the API's Cloud API for sender checks."""
    SECOND["phone_number_id"] = f"1000007{next(_serial):08d}"
    async with running() as sim:
        assert (await sim.register(**SECOND)).status == 201
        provider = WhatsAppProvider(sim.url, "v26.0", concurrency=4)
        monkeypatch.setitem(app.state._state, "provider", provider)
        try:
            yield sim
        finally:
            await provider.close()
