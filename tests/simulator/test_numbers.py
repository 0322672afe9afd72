"""simulator/numbers.py: a number's validation and Graph node, the registry's WABAs and
who may use which number; then sends through several numbers over real HTTP, each
checked against its own token, paced by its own throughput and kept in its own ledger."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from simulator import SimulatorConfig
from simulator.fate import make_wamid
from simulator.numbers import (
    TIERS,
    Denial,
    NumberConflict,
    NumberRegistry,
    PhoneNumber,
    bearer,
    graph_version,
    parse_numbers,
    requested_fields,
)
from tests.simulator.conftest import (
    PHONE_NUMBER_ID,
    TOKEN,
    assert_graph_error,
    phone,
    running,
    second_number,
    text,
)

SECOND = second_number()["phone_number_id"]


def make(**fields: Any) -> PhoneNumber:
    return PhoneNumber.from_json(second_number(**fields))


# --- a number --------------------------------------------------------------------------


def test_a_number_has_metas_defaults_and_its_throughput_level() -> None:
    number = make()
    assert (number.throughput, number.messaging_limit_tier, number.quality_rating) == (80.0, "TIER_250", "GREEN")
    assert number.throughput_level == "STANDARD"
    assert make(throughput=1000).throughput_level == "HIGH"
    assert make(throughput=None).throughput_level == "STANDARD"  # unlimited: a simulator's liberty
    assert TIERS == ("TIER_250", "TIER_2K", "TIER_10K", "TIER_100K", "TIER_UNLIMITED")


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"phone_number_id": "12a"}, "phone_number_id"),
        ({"waba_id": ""}, "waba_id"),
        ({"display_phone_number": 15550000002}, "display_phone_number"),
        ({"access_token": "has space"}, "access_token"),
        ({"verified_name": "  "}, "verified_name"),
        ({"throughput": 0}, "throughput"),
        ({"throughput": "fast"}, "throughput"),
        ({"throughput": True}, "throughput"),
        ({"messaging_limit_tier": "TIER_1K"}, "messaging_limit_tier"),
        ({"quality_rating": "BLUE"}, "quality_rating"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_field_is_refused_by_name(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        make(**fields)


@pytest.mark.parametrize("missing", ["phone_number_id", "waba_id", "display_phone_number", "access_token"])
def test_the_ids_the_display_number_and_the_token_are_required(missing: str) -> None:
    data = second_number()
    del data[missing]
    with pytest.raises(ValueError, match=f"{missing} is required"):
        PhoneNumber.from_json(data)


def test_the_node_serves_the_messaging_limit_under_the_name_of_its_version() -> None:
    node = make(messaging_limit_tier="TIER_10K").node((26, 0))
    assert node["whatsapp_business_manager_messaging_limit"] == "TIER_10K" and "messaging_limit_tier" not in node
    old = make(messaging_limit_tier="TIER_10K").node((23, 0))
    assert old["messaging_limit_tier"] == "TIER_10K" and "whatsapp_business_manager_messaging_limit" not in old
    assert node["throughput"] == {"level": "STANDARD"} and node["id"] == SECOND


def test_versions_fields_and_tokens_are_read_as_graph_reads_them() -> None:
    assert graph_version("v21.0", (26, 0)) == (21, 0)
    assert graph_version("latest", (26, 0)) == (26, 0)
    assert requested_fields(None) == ["display_phone_number", "verified_name", "quality_rating"]
    assert requested_fields("id, throughput{level},verified_name,") == ["id", "throughput", "verified_name"]
    assert [bearer(h) for h in ("Bearer abc", "OAuth abc", "bearer  abc ", "Basic abc", "Bearer", None)] == [
        "abc",
        "abc",
        "abc",
        None,
        None,
        None,
    ]


def test_numbers_from_json_text_for_the_environment() -> None:
    [number] = parse_numbers(
        '[{"phone_number_id": "7", "waba_id": "8", "display_phone_number": "1", "access_token": "t"}]'
    )
    assert (number.phone_number_id, number.throughput) == ("7", 80.0)
    assert parse_numbers("") == ()
    with pytest.raises(ValueError, match="list"):
        parse_numbers('{"phone_number_id": "7"}')


# --- the registry ----------------------------------------------------------------------


def test_numbers_belong_to_their_waba_and_a_token_may_cover_several() -> None:
    registry = NumberRegistry(SimulatorConfig().number)
    shared = make(phone_number_id="3", waba_id="200000000000001", access_token=TOKEN)
    assert registry.register(make()) and registry.register(shared)
    assert not registry.register(make())  # the same again: nothing changes
    waba = registry.waba("200000000000001")
    assert waba is not None and list(waba.numbers) == [PHONE_NUMBER_ID, "3"]
    assert [n.phone_number_id for n in registry] == [PHONE_NUMBER_ID, SECOND, "3"]
    assert registry.access("3", f"Bearer {TOKEN}") == shared
    assert registry.access(SECOND, f"Bearer {TOKEN}") is Denial.NO_OBJECT  # another token's
    assert registry.access(SECOND, "bearer token-2") == make()
    assert registry.access("999", "Bearer token-2") is Denial.NO_OBJECT
    assert registry.access(SECOND, "Bearer nope") is Denial.INVALID_TOKEN
    assert registry.access(SECOND, None) is Denial.MISSING_TOKEN
    with pytest.raises(NumberConflict, match=SECOND):
        registry.register(make(verified_name="Someone Else"))


def test_a_removed_number_is_gone_with_its_token_and_the_first_stays() -> None:
    registry = NumberRegistry(SimulatorConfig().number)
    registry.register(make())
    assert registry.remove(SECOND) == make() and registry.remove(SECOND) is None
    assert registry.waba("200000000000002") is None
    assert registry.access(SECOND, "Bearer token-2") is Denial.INVALID_TOKEN
    with pytest.raises(NumberConflict, match="configured number"):
        registry.remove(PHONE_NUMBER_ID)


# --- sending through several numbers ---------------------------------------------------


async def test_each_number_sends_with_its_own_token_only() -> None:
    async with running(SimulatorConfig(numbers=(make(),))) as sim:
        own = await sim.send(text(phone(1)), token="token-2", phone_number_id=SECOND)
        first = await sim.send(text(phone(1)), token=TOKEN)
        crossed = await sim.send(text(phone(1)), token=TOKEN, phone_number_id=SECOND)
        invalid = await sim.send(text(phone(1)), token="token-3", phone_number_id=SECOND)
        ledger = await sim.ledger(SECOND)
    assert own.status == first.status == 200
    # A good token on a number it may not use reads as a number that does not exist.
    error = assert_graph_error(crossed, 400, 100, "GraphMethodException", 33)
    assert f"Object with ID '{SECOND}' does not exist, cannot be loaded due to missing permissions" in error["message"]
    assert_graph_error(invalid, 401, 190)
    assert ledger["requests"] == 3 and ledger["accepted"] == 1
    assert ledger["immediate_errors"] == {"100": 1, "190": 1}


async def test_each_number_has_its_own_throughput() -> None:
    config = SimulatorConfig(rate_limit_per_second=5, numbers=(make(throughput=20),))
    async with running(config) as sim:
        started = time.monotonic()
        firsts, seconds = await asyncio.gather(
            asyncio.gather(*(sim.send(text(phone(i)), key=f"a-{i}") for i in range(40))),
            asyncio.gather(
                *(sim.send(text(phone(i)), key=f"b-{i}", token="token-2", phone_number_id=SECOND) for i in range(40))
            ),
        )
        elapsed = time.monotonic() - started
        total = await sim.ledger()
    for replies, rate in ((firsts, 5), (seconds, 20)):
        accepted = sum(r.status == 200 for r in replies)
        assert rate <= accepted <= rate + rate * elapsed + 1, (rate, accepted, elapsed)
        assert {r.status for r in replies} == {200, 429}
    assert total["numbers"][PHONE_NUMBER_ID]["rate_limited"] == sum(r.status == 429 for r in firsts)
    assert total["numbers"][SECOND]["rate_limited"] == sum(r.status == 429 for r in seconds)


async def test_the_ledger_knows_which_number_sent_each_message() -> None:
    async with running(SimulatorConfig(seed=4, numbers=(make(),))) as sim:
        first = await sim.send(text(phone(1), callback="c1:m1"), key="msg-1")
        second = await sim.send(text(phone(2), callback="c1:m2"), key="msg-1", token="token-2", phone_number_id=SECOND)
        total = await sim.ledger()
        own = await sim.ledger(SECOND)
        async with sim.http.get(f"{sim.url}/_simulator/ledger/messages", params={"phone_number_id": SECOND}) as r:
            listing = await r.json()
        async with sim.http.get(f"{sim.url}/_simulator/ledger", params={"phone_number_id": "999"}) as r:
            unknown = (r.status, await r.json())
    # The same key on two numbers is two messages; the first number's wamid is as ever.
    assert first.body["messages"][0]["id"] == make_wamid(4, "msg-1", 0)
    assert second.body["messages"][0]["id"] == make_wamid(4, f"{SECOND}:msg-1", 0)
    assert total["accepted"] == 2 and total["campaigns"]["1"]["accepted"] == 2
    assert total["numbers"] == {
        PHONE_NUMBER_ID: {"requests": 1, "accepted": 1, "rate_limited": 0},
        SECOND: {"requests": 1, "accepted": 1, "rate_limited": 0},
    }
    assert own["phone_number_id"] == SECOND and own["accepted"] == 1
    assert own["campaigns"]["1"]["final"]["rejected"] == 0 and own["campaigns"]["1"]["distinct_message_ids"] == 1
    assert [(m["key"], m["phone_number_id"]) for m in listing["messages"]] == [("msg-1", SECOND)]
    assert unknown == (404, {"error": "phone_number_id 999 is not a number of this simulator"})
