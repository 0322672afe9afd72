"""Templates over real HTTP GraphQL (schema/templates.py): connecting a sender syncs its
WABA's templates from the simulator; `templates` lists them; `syncTemplates` reads them
again and refuses an unknown sender by field."""

from __future__ import annotations

from tests.conftest import Api
from tests.schema.test_senders import CONNECT, given
from tests.simulator.conftest import Sim

LIST = (
    "query($sender: ID) { templates(senderId: $sender) { name language status parameterFormat parameters senderId } }"
)
SYNC = """mutation($sender: ID!) { syncTemplates(senderId: $sender) {
  templates { name language status } userErrors { field message code } } }"""


async def test_connecting_a_sender_syncs_its_templates_and_sync_reads_them_again(api: Api, sim: Sim) -> None:
    connected = (await api.gql(CONNECT, input=given()))["connectSender"]
    assert connected["userErrors"] == []
    sender = connected["sender"]["id"]
    listed = (await api.gql(LIST, sender=sender))["templates"]
    assert {
        "name": "hello_world",
        "language": "en_US",
        "status": "APPROVED",
        "parameterFormat": "POSITIONAL",
        "parameters": [],
        "senderId": sender,
    } in listed
    waba = connected["sender"]["wabaId"]
    async with sim.http.post(
        f"{sim.url}/_simulator/templates/{waba}",
        json={"name": "welcome", "language": "en_US", "category": "UTILITY", "body": "Hi {{1}}, welcome"},
    ) as reply:
        assert reply.status == 201
    synced = (await api.gql(SYNC, sender=sender))["syncTemplates"]
    assert synced["userErrors"] == []
    assert {"name": "welcome", "language": "en_US", "status": "APPROVED"} in synced["templates"]
    assert len((await api.gql(LIST))["templates"]) == len(synced["templates"])


async def test_sync_templates_of_an_unknown_sender_is_not_found(api: Api, sim: Sim) -> None:
    refused = (await api.gql(SYNC, sender="bm9wZQ"))["syncTemplates"]
    assert refused == {
        "templates": None,
        "userErrors": [{"field": ["senderId"], "message": refused["userErrors"][0]["message"], "code": "NOT_FOUND"}],
    }
