"""Status webhooks are routed by the business number they name (services/receipts.py
`_route`): posted validly signed to the running service, a receipt moves a message only
if that number sent it, so a webhook naming another workspace's number, or carrying
another workspace's message ids, changes nothing."""

from __future__ import annotations

import json
from typing import Any

from models import Campaign, Message, Sender, WebhookInbox
from providers.whatsapp import signature
from services.tokens import TokenBox
from settings import Settings
from tests.conftest import Api
from tests.services.test_receipts import T0, assert_consistent, pid, prepare
from tests.waiting import until

BOOTSTRAP = Settings().whatsapp_phone_number_id
_serial = iter(range(1, 10**6))


async def with_sender(api: Api, campaign_id: int) -> str:
    """Give the campaign a sender of its workspace; returns that sender's number."""
    number = f"3000000{next(_serial):08d}"
    sender = await Sender.create(
        workspace_id=api.principal.workspace_id,
        name="line",
        waba_id="1",
        phone_number_id=number,
        display_phone_number="1555",
        access_token_sealed=TokenBox(Settings().sender_token_key).seal("t"),
        throughput=80,
    )
    await Campaign.filter(id=campaign_id).update(sender_id=sender.id)
    return number


def payload(number: str | None, *messages: tuple[int, int], status: str = "delivered") -> dict[str, Any]:
    """A Meta status webhook from `number` (None: without metadata) about (campaign,
    message) pairs, with our callback data as the service sends it."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "statuses": [
            {
                "id": pid(mid),
                "status": status,
                "timestamp": str(T0 + 1),
                "biz_opaque_callback_data": f"c{cid}:m{mid}:r0",
            }
            for cid, mid in messages
        ],
    }
    if number is not None:
        value["metadata"] = {"display_phone_number": "1555", "phone_number_id": number}
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }


async def post(api: Api, settings: Settings, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    headers = {"X-Hub-Signature-256": signature(settings.whatsapp_app_secret, raw), "Content-Type": "application/json"}
    response = await api.http.post("/webhooks/whatsapp", content=raw, headers=headers)
    assert response.status_code == 200, response.text
    await until(lambda: _drained(), what="the inbox applied")


async def _drained() -> bool:
    return not await WebhookInbox.exists()


async def states(ids: list[int]) -> list[str]:
    rows = await Message.filter(id__in=ids).order_by("id").values_list("status", flat=True)
    return [str(getattr(s, "value", s)) for s in rows]


async def test_a_receipt_moves_only_a_message_its_number_sent(api: Api, other_api: Api, settings: Settings) -> None:
    ours, our_ids = await prepare(api, sent=2)
    theirs, their_ids = await prepare(other_api, sent=2)
    our_number, their_number = await with_sender(api, ours), await with_sender(other_api, theirs)
    # another workspace's number, our message ids: nothing moves
    await post(api, settings, payload(their_number, *[(ours, m) for m in our_ids]))
    # our number, their message ids: nothing moves either
    await post(api, settings, payload(our_number, *[(theirs, m) for m in their_ids]))
    # the bootstrap number is not ours: a campaign with a sender is reached only through it
    await post(api, settings, payload(BOOTSTRAP, (ours, our_ids[0])))
    # no metadata at all (Meta always sends it): nothing moves
    await post(api, settings, payload(None, (ours, our_ids[0]), (theirs, their_ids[0])))
    assert await states(our_ids) == ["SENT", "SENT"] and await states(their_ids) == ["SENT", "SENT"]
    # the right number moves the right messages
    await post(api, settings, payload(our_number, *[(ours, m) for m in our_ids]))
    await post(api, settings, payload(their_number, (theirs, their_ids[1])))
    assert await states(our_ids) == ["DELIVERED", "DELIVERED"]
    assert await states(their_ids) == ["SENT", "DELIVERED"]
    assert (await assert_consistent(ours))["delivered"] == 2 and (await assert_consistent(theirs))["delivered"] == 1


async def test_a_campaign_without_a_sender_takes_receipts_of_the_bootstrap_number_only(
    api: Api, settings: Settings
) -> None:
    pk, ids = await prepare(api, sent=1)
    await post(api, settings, payload("399999999999999", (pk, ids[0])))
    assert await states(ids) == ["SENT"]
    await post(api, settings, payload(BOOTSTRAP, (pk, ids[0])))
    assert await states(ids) == ["DELIVERED"]
