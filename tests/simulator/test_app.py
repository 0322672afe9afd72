"""simulator/app.py over real HTTP: the send route under any version segment and under a
mount prefix, the phone number lookup as the Graph API answers it, the /_simulator
routes (ledger, listing, reset, health, numbers), the lifespan, and the lost answer as
a client sees it (a status line, then the connection drops)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from simulator import Simulator, SimulatorConfig, create_simulator_app
from tests.simulator.conftest import (
    PHONE_NUMBER_ID,
    TOKEN,
    Sim,
    assert_graph_error,
    phone,
    running,
    second_number,
    serve,
    template,
    text,
)

SEND_PATH = f"/v26.0/{PHONE_NUMBER_ID}/messages"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# --- the send route --------------------------------------------------------------------


async def test_template_send_is_accepted_and_any_version_segment_works() -> None:
    async with running() as sim:
        reply = await sim.send(template("14155550101"), key="msg-2", version="v18.0")
    assert reply.status == 200
    assert reply.body["contacts"] == [{"input": "14155550101", "wa_id": "14155550101"}]


async def test_the_app_works_mounted_under_a_prefix() -> None:
    app = create_simulator_app(SimulatorConfig())
    outer = Starlette(routes=[Mount("/simulator", app=app)])
    simulator: Simulator = app.state.simulator
    await simulator.start()  # a mounted app's lifespan does not run: its host starts it
    try:
        async with serve(outer) as url, aiohttp.ClientSession() as http:
            sim = Sim(f"{url}/simulator", simulator, http)
            reply = await sim.send(text(phone(1), callback="c1:m1"), key="msg-1")
            ledger = await sim.ledger()
    finally:
        await simulator.stop()
    assert reply.status == 200 and ledger["accepted"] == 1


async def test_answers_are_json_with_their_exact_length() -> None:
    async with running(SimulatorConfig(error_mix={"131026": 0.5})) as sim:
        for i in range(6):
            async with sim.http.post(sim.url + SEND_PATH, data=json.dumps(text(phone(i))), headers=AUTH) as r:
                raw = await r.read()
                assert r.headers["Content-Type"] == "application/json"
                assert int(r.headers["Content-Length"]) == len(raw)
                json.loads(raw)


async def test_a_body_sent_in_chunks_is_read_whole() -> None:
    payload = json.dumps(text(phone(1), body="x" * 3000)).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 512):
            yield payload[i : i + 512]

    async with running() as sim:
        async with sim.http.post(sim.url + SEND_PATH, data=chunks(), headers=AUTH) as r:
            assert r.status == 200, await r.text()
        assert sim.simulator.ledger.accepted == 1


async def test_a_lost_answer_is_a_status_line_then_a_dropped_connection_and_logs_nothing() -> None:
    async with running(SimulatorConfig(lost_answer_probability=1.0)) as sim:
        records = Records()  # added once uvicorn has configured its loggers
        logging.getLogger("uvicorn.error").addHandler(records)
        try:
            async with sim.http.post(sim.url + SEND_PATH, data=json.dumps(text(phone(1))), headers=AUTH) as r:
                assert r.status == 200
                with pytest.raises(aiohttp.ClientPayloadError):
                    await r.read()
        finally:
            logging.getLogger("uvicorn.error").removeHandler(records)
        ledger = await sim.ledger()
    assert ledger["accepted"] == 1 and ledger["answers_lost"] == 1
    assert not [m for m in records.messages if "without completing response" in m]


async def test_other_methods_and_paths_are_no_sends() -> None:
    async with running() as sim:
        async with sim.http.get(sim.url + SEND_PATH) as r:
            assert r.status == 405
        async with sim.http.post(sim.url + SEND_PATH + "/extra", data=b"{}", headers=AUTH) as r:
            assert r.status == 404
        # /{version}/{id} is a node to read (GET): posting to it sends nothing
        async with sim.http.post(sim.url + "/v26.0/messages", data=b"{}", headers=AUTH) as r:
            assert r.status == 405
        ledger = await sim.ledger()
    assert ledger["requests"] == 0


async def test_a_post_to_a_simulator_route_is_not_taken_for_a_send() -> None:
    """/_simulator/ledger/messages also fits /{version}/{phone_number_id}/messages: FastSend
    leaves /_simulator paths alone, and the router must too."""
    async with running() as sim:
        async with sim.http.post(f"{sim.url}/_simulator/ledger/messages", data=b"{}", headers=AUTH) as r:
            status = r.status
        ledger = await sim.ledger()
    assert ledger["requests"] == 0 and ledger["immediate_errors"] == {}
    assert status == 405


# --- the /_simulator routes ------------------------------------------------------------


async def test_the_ledger_object_is_readable_in_process_and_reset_clears_it() -> None:
    async with running() as sim:
        first = await sim.send(text(phone(1), callback="c2:m1"), key="msg-1")
        assert sim.simulator.ledger.accepted == 1
        async with sim.http.post(f"{sim.url}/_simulator/reset") as r:
            assert r.status == 200
        ledger = await sim.ledger()
        assert ledger["accepted"] == 0 and ledger["requests"] == 0 and ledger["campaigns"] == {}
        # The key is forgotten too: the same message is sent again, not replayed.
        again = await sim.send(text(phone(1), callback="c2:m1"), key="msg-1")
        ledger = await sim.ledger()
    assert again.body == first.body  # same seed and key, same wamid
    assert ledger["accepted"] == 1 and ledger["replays"] == 0


async def test_the_listing_without_a_campaign_has_every_send_campaign_ones_first() -> None:
    async with running() as sim:
        await sim.send(text(phone(1)), key="test-send")
        await sim.send(text(phone(2), callback="c6:m1"), key="msg-1")
        async with sim.http.get(f"{sim.url}/_simulator/ledger/messages") as r:
            listing = await r.json()
        async with sim.http.get(f"{sim.url}/_simulator/ledger/messages", params={"offset": "5"}) as r:
            past_the_end = await r.json()
    assert listing["campaign"] is None and listing["count"] == 2
    assert [(m["key"], m["campaign_id"]) for m in listing["messages"]] == [("msg-1", 6), ("test-send", None)]
    assert past_the_end["messages"] == [] and past_the_end["count"] == 2


@pytest.mark.parametrize("params", [{"campaign": "four"}, {"offset": "1.5"}, {"limit": "all"}])
async def test_listing_parameters_that_are_not_integers_are_a_400(params: dict[str, str]) -> None:
    async with running() as sim:
        async with sim.http.get(f"{sim.url}/_simulator/ledger/messages", params=params) as r:
            assert r.status == 400
            assert await r.json() == {"error": "campaign, offset and limit must be integers"}


async def test_health_reports_the_webhook_sender_which_the_lifespan_starts_and_stops() -> None:
    async with running() as sim:
        async with sim.http.get(f"{sim.url}/_simulator/health") as r:
            assert (r.status, await r.json()) == (200, {"ok": True, "webhooks": True})
    assert sim.simulator.webhooks.running is False


def test_without_a_config_the_app_simulates_the_defaults() -> None:
    app = create_simulator_app()
    assert isinstance(app.state.simulator, Simulator) and app.state.simulator.config == SimulatorConfig()


# --- the phone number lookup -----------------------------------------------------------

SERVICE_FIELDS = "id,display_phone_number,verified_name,throughput,whatsapp_business_manager_messaging_limit"


async def test_a_registered_number_reads_as_meta_shows_it_with_its_own_token() -> None:
    async with running() as sim:
        registered = await sim.register(**second_number(throughput=1000, messaging_limit_tier="TIER_100K"))
        reply = await sim.lookup("100000000000002", SERVICE_FIELDS, token="token-2")
        first = await sim.lookup(PHONE_NUMBER_ID, "whatsapp_business_manager_messaging_limit")
        defaults = await sim.lookup(PHONE_NUMBER_ID)
    assert registered.status == 201 and registered.body["created"] is True
    assert reply.status == 200 and reply.headers["Content-Type"] == "application/json"
    assert reply.body == {
        "id": "100000000000002",
        "display_phone_number": "15550000002",
        "verified_name": "Second Shop",
        "throughput": {"level": "HIGH"},
        "whatsapp_business_manager_messaging_limit": "TIER_100K",
    }
    # Meta's own example: the field asked for, then the id
    assert list(first.body.items()) == [
        ("whatsapp_business_manager_messaging_limit", "TIER_250"),
        ("id", PHONE_NUMBER_ID),
    ]
    assert defaults.body == {
        "display_phone_number": "15550000001",
        "verified_name": "Simulated Business",
        "quality_rating": "GREEN",
        "id": PHONE_NUMBER_ID,
    }


async def test_a_lookup_with_a_wrong_missing_or_other_token_or_an_unknown_id_is_refused_as_graph_does() -> None:
    async with running() as sim:
        await sim.register(**second_number())
        wrong = await sim.lookup(PHONE_NUMBER_ID, "id", token="nope")
        missing = await sim.lookup(PHONE_NUMBER_ID, "id", token=None)
        other = await sim.lookup("100000000000002", "id", token=TOKEN)  # the first number's token
        unknown = await sim.lookup("999", "id")
        async with sim.http.get(f"{sim.url}/v26.0/{PHONE_NUMBER_ID}", params={"access_token": TOKEN}) as r:
            by_query = r.status
    assert assert_graph_error(wrong, 401, 190)["message"] == "Invalid OAuth access token - Cannot parse access token"
    assert assert_graph_error(missing, 400, 104)["message"] == "An access token is required to request this resource."
    for reply, object_id in ((other, "100000000000002"), (unknown, "999")):
        error = assert_graph_error(reply, 400, 100, "GraphMethodException", 33)
        assert error["message"].startswith(f"Unsupported get request. Object with ID '{object_id}' does not exist")
    assert other.body["error"]["message"] == unknown.body["error"]["message"].replace("999", "100000000000002")
    assert by_query == 200


async def test_a_field_the_node_lacks_refuses_the_whole_lookup() -> None:
    async with running() as sim:
        unknown = await sim.lookup(PHONE_NUMBER_ID, "id,display_name")
        # before v24.0 the messaging limit had its old name
        new_name_too_early = await sim.lookup(
            PHONE_NUMBER_ID, "whatsapp_business_manager_messaging_limit", version="v23.0"
        )
        old_name = await sim.lookup(PHONE_NUMBER_ID, "messaging_limit_tier", version="v23.0")
    error = assert_graph_error(unknown, 400, 100)
    assert (
        error["message"]
        == "(#100) Tried accessing nonexisting field (display_name) on node type (WhatsAppBusinessPhoneNumber)"
    )
    assert_graph_error(new_name_too_early, 400, 100)
    assert old_name.body == {"messaging_limit_tier": "TIER_250", "id": PHONE_NUMBER_ID}


# --- the numbers routes ----------------------------------------------------------------


async def test_numbers_are_listed_registered_once_read_and_removed() -> None:
    async with running() as sim:
        first = await sim.register(**second_number())
        again = await sim.register(**second_number())
        conflict = await sim.register(**second_number(access_token="token-9"))
        bad = await sim.register(**second_number(messaging_limit_tier="TIER_1K"))
        async with sim.http.post(f"{sim.url}/_simulator/numbers", data=b"{not json") as r:
            not_json = r.status
        async with sim.http.get(f"{sim.url}/_simulator/numbers") as r:
            listing = await r.json()
        async with sim.http.post(f"{sim.url}/_simulator/reset") as r:
            assert r.status == 200  # numbers are set-up, not traffic: they stay
        async with sim.http.get(f"{sim.url}/_simulator/numbers/100000000000002") as r:
            one = await r.json()
        async with sim.http.delete(f"{sim.url}/_simulator/numbers/100000000000002") as r:
            removed = (r.status, await r.json())
        async with sim.http.delete(f"{sim.url}/_simulator/numbers/{PHONE_NUMBER_ID}") as r:
            keep_first = r.status
        async with sim.http.get(f"{sim.url}/_simulator/numbers/100000000000002") as r:
            gone = r.status
        after = await sim.send(text(phone(1)), token="token-2", phone_number_id="100000000000002")
    assert (first.status, again.status, again.body["created"]) == (201, 200, False)
    assert conflict.status == 409 and "100000000000002" in conflict.body["error"]
    assert bad.status == 400 and "messaging_limit_tier" in bad.body["error"]
    assert not_json == 400
    assert [n["phone_number_id"] for n in listing["numbers"]] == [PHONE_NUMBER_ID, "100000000000002"]
    assert listing["numbers"][0] == {
        "phone_number_id": PHONE_NUMBER_ID,
        "waba_id": "200000000000001",
        "display_phone_number": "15550000001",
        "access_token": TOKEN,
        "verified_name": "Simulated Business",
        "throughput": None,  # the config's rate_limit_per_second: unlimited by default
        "messaging_limit_tier": "TIER_250",
        "quality_rating": "GREEN",
    }
    assert one == first.body["number"] and one["throughput"] == 80.0
    assert removed == (200, {"removed": "100000000000002"}) and keep_first == 409 and gone == 404
    assert_graph_error(after, 401, 190)  # its token went with it
