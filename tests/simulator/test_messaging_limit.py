"""The messaging limit as the simulator enforces it (simulator/messaging_limit.py): per
number, unique recipients per moving 24 hours of its own clock, which a test moves with
`POST /_simulator/clock`; a new recipient beyond the limit is refused 131048, counted in
the ledger, and accepted once the window rolls."""

from __future__ import annotations

import pytest

from simulator import SimulatorConfig
from simulator.messaging_limit import WINDOW_S, Clock, RecipientWindow
from tests.simulator.conftest import PHONE_NUMBER_ID, Sim, assert_error, phone, running, second_number, text


async def move_clock(sim: Sim, offset: float) -> dict[str, float]:
    async with sim.http.post(f"{sim.url}/_simulator/clock", json={"offset": offset}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_a_number_accepts_its_tier_of_new_recipients_then_refuses_new_ones_until_the_window_rolls() -> None:
    async with running(SimulatorConfig(messaging_limit_tier="TIER_250")) as sim:
        for i in range(250):
            assert (await sim.send(text(phone(i), callback=f"c1:m{i + 1}"))).status == 200
        refused = await sim.send(text(phone(250), callback="c1:m251"))
        error = assert_error(refused, 400, 131048)
        assert error["message"] == "(#131048) Spam rate limit hit"
        assert "restrictions on how many messages can be sent from this phone number" in error["error_data"]["details"]
        # someone already messaged in the window does not count again
        assert (await sim.send(text(phone(7), body="again", callback="c2:m1"))).status == 200
        own = await sim.ledger(PHONE_NUMBER_ID)
        assert own["limit_refused"] == 1 and own["immediate_errors"] == {"131048": 1}
        assert own["campaigns"]["1"]["final"]["rejected"] == 1
        limit = own["messaging_limit"]
        assert (limit["limit"], limit["used"], limit["peak"], limit["refused"]) == (250, 250, 250, 1)
        assert (await sim.ledger())["limit_refused"] == 1
        # a day later by the simulator's clock, the same request is accepted (never replayed)
        moved = await move_clock(sim, WINDOW_S + 1)
        assert moved["offset"] == WINDOW_S + 1
        accepted = await sim.send(text(phone(250), callback="c1:m251"))
        assert accepted.status == 200, accepted.body
        own = await sim.ledger(PHONE_NUMBER_ID)
        assert own["messaging_limit"]["used"] == 1 and own["campaigns"]["1"]["final"]["rejected"] == 0
        (record,) = [s for s in sim.simulator.ledger.sends(1) if s.to == phone(250)]
        assert record.at >= moved["now"] - 1  # the ledger keeps the simulator's time


async def test_an_unlimited_number_and_each_number_of_its_own_are_counted_apart() -> None:
    config = SimulatorConfig(messaging_limit_tier="TIER_UNLIMITED")
    async with running(config) as sim:
        assert (await sim.register(**second_number(messaging_limit_tier="TIER_250", throughput=None))).status == 201
        for i in range(300):
            assert (await sim.send(text(phone(i)))).status == 200
        for i in range(250):
            reply = await sim.send(text(phone(i)), token="token-2", phone_number_id="100000000000002")
            assert reply.status == 200
        over = await sim.send(text(phone(999)), token="token-2", phone_number_id="100000000000002")
        assert_error(over, 400, 131048)
        assert (await sim.ledger(PHONE_NUMBER_ID))["messaging_limit"] is None
        assert (await sim.ledger("100000000000002"))["messaging_limit"]["refused"] == 1


async def test_the_clock_route_takes_a_number_of_seconds_only() -> None:
    async with running() as sim:
        async with sim.http.get(f"{sim.url}/_simulator/clock") as r:
            assert r.status == 200 and (await r.json())["offset"] == 0
        for bad in ({"offset": "1d"}, {"offset": True}, {}, [1]):
            async with sim.http.post(f"{sim.url}/_simulator/clock", json=bad) as r:
                assert r.status == 400 and "offset" in (await r.json())["error"]
        async with sim.http.post(f"{sim.url}/_simulator/clock", data=b"{") as r:
            assert r.status == 400


async def test_reset_forgets_who_was_counted() -> None:
    async with running(SimulatorConfig(messaging_limit_tier="TIER_250")) as sim:
        for i in range(250):
            await sim.send(text(phone(i)))
        sim.simulator.reset()
        assert (await sim.send(text(phone(400)))).status == 200
        assert (await sim.ledger(PHONE_NUMBER_ID))["messaging_limit"]["used"] == 1


def test_a_recipient_counts_from_its_latest_acceptance_for_24_hours() -> None:
    window = RecipientWindow(2)
    assert window.admit("1", 0.0) and window.admit("2", 10.0)
    assert not window.admit("3", 20.0)
    assert window.admit("1", 100.0)  # counted again from 100
    assert window.used(WINDOW_S + 15) == 1  # "2" expired at 10 + 24 h; "1" counts until 100 + 24 h
    assert window.oldest(WINDOW_S + 15) == 100.0
    assert window.admit("3", WINDOW_S + 20)
    assert not window.admit("4", WINDOW_S + 30)
    assert window.used(WINDOW_S + 101) == 1
    assert (window.peak, window.refused) == (2, 2)


@pytest.mark.parametrize("offset", [0.0, 3600.0])
def test_the_clock_is_its_base_plus_the_offset(offset: float) -> None:
    clock = Clock(lambda: 1000.0)
    clock.offset = offset
    assert clock() == 1000.0 + offset
