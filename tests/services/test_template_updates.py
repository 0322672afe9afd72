"""services/template_updates.py: a template status webhook moves the registry, then the
campaigns that send that template from a sender of that WABA: PAUSED or DISABLED pause
a PROCESSING campaign with the reason, REJECTED fails it; other WABAs' campaigns and
other templates are untouched."""

from __future__ import annotations

import pytest

from domain.ids import expect_id
from domain.lifecycle import CampaignStatus
from domain.senders import Tier
from models import Campaign, Sender
from providers.whatsapp import TemplateUpdate
from services.senders import ensure_sender
from services.template_updates import apply_updates
from services.tokens import TokenBox
from settings import Settings
from tests.conftest import Api
from tests.schema.states import campaign_in

WABA = "700000000000001"
_serial = iter(range(1, 10**6))


async def processing_with(api: Api, template: str, waba: str = WABA) -> int:
    """A PROCESSING campaign of a new sender of `waba`, sending `template` (en_US):
    launched from the bootstrap sender (a workspace's first sender is its default, and a
    connected sender's campaign needs a synced registry to launch), then moved to it."""
    await Sender.filter(workspace_id=api.principal.workspace_id).update(is_default=False)
    pk = expect_id((await campaign_in(api, CampaignStatus.PROCESSING))["id"], "Campaign")
    sender = await ensure_sender(
        api.principal.workspace_id,
        TokenBox(Settings().sender_token_key),
        name="line",
        waba_id=waba,
        phone_number_id=f"7100000{next(_serial):08d}",
        display_phone_number="1555",
        access_token="EAAG-t",
        throughput=80,
        tier=Tier.TIER_250,
    )
    await Campaign.filter(id=pk).update(template_name=template, template_language="en_US", sender_id=sender.id)
    return pk


@pytest.mark.parametrize(
    ("event", "status", "words"),
    [
        ("PAUSED", CampaignStatus.PAUSED, "WhatsApp paused the template promo (en_US): LOW_QUALITY"),
        ("DISABLED", CampaignStatus.PAUSED, "WhatsApp disabled the template promo (en_US)"),
        ("REJECTED", CampaignStatus.FAILED, "WhatsApp rejected the template promo (en_US)"),
    ],
)
async def test_a_stopped_template_stops_the_campaigns_sending_it(
    api: Api, other_api: Api, event: str, status: CampaignStatus, words: str
) -> None:
    ours = await processing_with(api, "promo")
    other_template = await processing_with(api, "welcome")
    other_waba = await processing_with(other_api, "promo", waba="700000000000099")
    moved = await apply_updates([TemplateUpdate(WABA, "promo", "en_US", event, "LOW_QUALITY")])
    assert moved == [ours]
    campaign = await Campaign.get(id=ours)
    assert campaign.status is status and campaign.status_reason is not None and words in campaign.status_reason
    for untouched in (other_template, other_waba):
        assert (await Campaign.get(id=untouched)).status is CampaignStatus.PROCESSING


async def test_a_queued_campaign_is_paused_before_it_sends(api: Api) -> None:
    pk = await processing_with(api, "promo")
    await Campaign.filter(id=pk).update(status=CampaignStatus.QUEUED)
    assert await apply_updates([TemplateUpdate(WABA, "promo", "en_US", "PAUSED", None)]) == [pk]
    campaign = await Campaign.get(id=pk)
    assert campaign.status is CampaignStatus.PAUSED and "paused the template promo" in (campaign.status_reason or "")


async def test_an_approval_moves_no_campaign(api: Api) -> None:
    pk = await processing_with(api, "promo")
    assert await apply_updates([TemplateUpdate(WABA, "promo", "en_US", "APPROVED", None)]) == []
    assert (await Campaign.get(id=pk)).status is CampaignStatus.PROCESSING
