"""Template status webhooks applied: the registry (services/templates.py), then the
campaigns that send the template. Apart from the registry because it takes
transitions, which themselves ask the registry at launch."""

from __future__ import annotations

from collections.abc import Sequence

from domain.lifecycle import Action, CampaignStatus
from domain.templates import STOPPING
from models import Campaign
from providers.whatsapp import TemplateUpdate
from services.templates import apply_status_update
from services.transitions import AfterTransition, apply_system_action


async def apply_updates(updates: Sequence[TemplateUpdate], after: AfterTransition | None = None) -> list[int]:
    """Apply template status webhooks: the registry first, then the campaigns sending
    with that template from a sender of that WABA: PAUSED or DISABLED pauses them (the
    run stops: the renewal sees the status), REJECTED fails them; each with the reason.
    Returns the campaigns moved. (A change lost here is still caught at the next send,
    which Meta refuses with 132015/132016: fatal codes that stop the campaign.)"""
    moved: list[int] = []
    for update in updates:
        await apply_status_update(update.waba_id, update.name, update.language, update.event)
        how = STOPPING.get(update.event)
        if how is None:
            continue
        action = Action.FAIL if update.event == "REJECTED" else Action.AUTO_PAUSE
        why = f"WhatsApp {how} the template {update.name} ({update.language})" + (
            f": {update.reason}" if update.reason else "."
        )
        ids: list[int] = await Campaign.filter(  # type: ignore[assignment]
            sender__waba_id=update.waba_id,
            template_name=update.name,
            template_language=update.language,
            status__in=(CampaignStatus.QUEUED, CampaignStatus.PROCESSING),
        ).values_list("id", flat=True)
        for campaign_id in ids:
            done = await apply_system_action(campaign_id, action, actor="whatsapp", reason=why, after=after)
            if done is not None:
                moved.append(campaign_id)
    return moved
