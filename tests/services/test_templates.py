"""services/templates.py against the simulator's template registry over real HTTP: a
sync stores what the Cloud API lists (positional and named parameters), follows its
paging, replaces the registry whole, refuses without changing anything when the Cloud
API refuses, and a status webhook's change is applied to every sender of the WABA."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from domain.errors import NotFound, ValidationFailed
from domain.ids import expect_id
from domain.lifecycle import Action, CampaignStatus
from domain.senders import Tier
from models import Campaign, Sender, Template
from providers.whatsapp import WhatsAppProvider
from services import templates
from services.senders import ensure_sender
from services.tokens import TokenBox
from services.transitions import apply_action
from settings import Settings
from tests.conftest import Api
from tests.simulator.conftest import Sim, running

BOX = TokenBox(Settings().sender_token_key)
_serial = iter(range(1, 10**6))


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[tuple[Sim, WhatsAppProvider]]:
    async with running() as sim:
        provider = WhatsAppProvider(sim.url, "v26.0", concurrency=4)
        try:
            yield sim, provider
        finally:
            await provider.close()


async def sender_of(api: Api, sim: Sim, token: str = "dev-token") -> int:
    """A sender of the workspace on the simulator's first number (its WABA has the
    sample templates). Each test gets its own number id: numbers are global."""
    config = sim.simulator.config
    view = await ensure_sender(
        api.principal.workspace_id,
        BOX,
        name="sim",
        waba_id=config.waba_id,
        phone_number_id=f"6000000{next(_serial):08d}",
        display_phone_number=config.display_phone_number,
        access_token=token,
        throughput=80,
        tier=Tier.TIER_250,
    )
    return view.id


async def test_a_sync_stores_the_templates_the_cloud_api_lists(api: Api, sim: tuple[Sim, WhatsAppProvider]) -> None:
    server, provider = sim
    sender = await sender_of(api, server)
    synced = await templates.sync(api.principal.workspace_id, sender, BOX, provider)
    listed = {
        (t.info.name, t.info.language): t.info for t in await templates.list_templates(api.principal.workspace_id)
    }
    assert synced.count == len(listed) >= 4
    hello = listed[("hello_world", "en_US")]
    assert (hello.status, hello.category, hello.parameters) == ("APPROVED", "UTILITY", ())
    sale = listed[("spring_sale", "en_US")]
    assert (sale.parameter_format, sale.parameters, sale.category) == ("POSITIONAL", ("1", "2"), "MARKETING")
    assert "{{1}}" in sale.body and ("spring_sale", "es") in listed
    order = listed[("order_update", "en_US")]
    assert (order.parameter_format, order.parameters) == ("NAMED", ("first_name", "order_id"))
    assert [t.info.name for t in await templates.list_templates(api.principal.workspace_id, status="PAUSED")] == []


async def test_a_sync_follows_the_paging_and_replaces_the_registry_whole(
    api: Api, sim: tuple[Sim, WhatsAppProvider]
) -> None:
    server, provider = sim
    waba = server.simulator.config.waba_id
    for i in range(130):  # more than one page of 100
        async with server.http.post(
            f"{server.url}/_simulator/templates/{waba}",
            json={"name": f"promo_{i:03d}", "language": "en_US", "category": "MARKETING", "body": "Hi {{1}}"},
        ) as reply:
            assert reply.status == 201, await reply.text()
    sender = await sender_of(api, server)
    first = await templates.sync(api.principal.workspace_id, sender, BOX, provider)
    assert first.count >= 134
    async with server.http.delete(f"{server.url}/_simulator/templates/{waba}/promo_000/en_US") as reply:
        assert reply.status == 200
    second = await templates.sync(api.principal.workspace_id, sender, BOX, provider)
    assert second.count == first.count - 1
    assert not await Template.filter(sender_id=sender, name="promo_000").exists()


async def test_a_refused_sync_changes_nothing_and_another_workspaces_sender_is_not_found(
    api: Api, other_api: Api, sim: tuple[Sim, WhatsAppProvider]
) -> None:
    server, provider = sim
    sender = await sender_of(api, server)
    await templates.sync(api.principal.workspace_id, sender, BOX, provider)
    before = await Template.filter(sender_id=sender).count()
    await Sender.filter(id=sender).update(access_token_sealed=BOX.seal("EAAG-revoked"))
    with pytest.raises(ValidationFailed) as caught:
        await templates.sync(api.principal.workspace_id, sender, BOX, provider)
    assert caught.value.field == ("senderId",) and "refused" in caught.value.message
    assert await Template.filter(sender_id=sender).count() == before
    with pytest.raises(NotFound):
        await templates.sync(other_api.principal.workspace_id, sender, BOX, provider)
    assert await templates.list_templates(other_api.principal.workspace_id) == []


async def test_a_status_update_reaches_every_sender_of_the_waba(api: Api, sim: tuple[Sim, WhatsAppProvider]) -> None:
    server, provider = sim
    first, second = await sender_of(api, server), await sender_of(api, server)
    for sender in (first, second):
        await templates.sync(api.principal.workspace_id, sender, BOX, provider)
    waba = server.simulator.config.waba_id
    changed = await templates.apply_status_update(waba, "spring_sale", "en_US", "paused")
    assert set(changed) >= {first, second}
    paused = await Template.filter(sender_id__in=[first, second], name="spring_sale", language="en_US")
    assert {t.status for t in paused} == {"PAUSED"}
    assert await templates.apply_status_update("999", "spring_sale", "en_US", "PAUSED") == []


@pytest.mark.parametrize(
    ("template", "body", "field", "words"),
    [
        (("no_such_template", "en_US"), "{{name}}", "templateName", "has no template"),
        (("spring_sale", "de"), "{{name}} {{discount}}", "templateName", "has no template"),
        (("spring_sale", "en_US"), "{{name}}", "body", "takes 2 parameters"),
        (("order_update", "en_US"), "{{name}} {{order}} {{extra}}", "body", "takes 2 parameters"),
    ],
)
async def test_a_templated_campaign_leaves_draft_only_with_an_approved_template_it_fills(
    api: Api, sim: tuple[Sim, WhatsAppProvider], template: tuple[str, str], body: str, field: str, words: str
) -> None:
    server, provider = sim
    sender = await sender_of(api, server)
    await templates.sync(api.principal.workspace_id, sender, BOX, provider)
    name, language = template
    view = await api.create_campaign(templateName=name, templateLanguage=language, body=body)
    await api.add(view["id"], ("+14155550100", {"name": "Ann", "discount": "20%", "order": "A1", "extra": "x"}))
    pk = expect_id(view["id"], "Campaign")
    with pytest.raises(ValidationFailed) as caught:
        await apply_action(api.principal, pk, Action.SEND_NOW)
    assert caught.value.field == (field,) and words in caught.value.message
    assert (await Campaign.get(id=pk)).status is CampaignStatus.DRAFT


async def test_a_paused_template_is_refused_at_launch_and_an_approved_one_goes(
    api: Api, sim: tuple[Sim, WhatsAppProvider]
) -> None:
    server, provider = sim
    sender = await sender_of(api, server)
    await templates.sync(api.principal.workspace_id, sender, BOX, provider)
    view = await api.create_campaign(templateName="spring_sale", templateLanguage="en_US", body="{{name}} {{discount}}")
    await api.add(view["id"], ("+14155550101", {"name": "Ann", "discount": "20%"}))
    pk = expect_id(view["id"], "Campaign")
    await Template.filter(sender_id=sender, name="spring_sale", language="en_US").update(status="PAUSED")
    with pytest.raises(ValidationFailed) as caught:
        await apply_action(api.principal, pk, Action.SEND_NOW)
    assert caught.value.field == ("templateName",) and "PAUSED, not APPROVED" in caught.value.message
    await Template.filter(sender_id=sender, name="spring_sale", language="en_US").update(status="APPROVED")
    applied = await apply_action(api.principal, pk, Action.SEND_NOW)
    assert applied.campaign.status is CampaignStatus.QUEUED
