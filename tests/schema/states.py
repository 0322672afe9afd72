"""Bring a campaign into any status through the real code paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from domain.ids import expect_id
from domain.lifecycle import Action, CampaignStatus
from models import Campaign, Message
from services.transitions import apply_system_action
from tests.conftest import CAMPAIGN_FIELDS, Api

S = CampaignStatus


def future(minutes: int = 60) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


_TYPES = {
    "id": "ID!",
    "at": "DateTime!",
    "reason": "String",
    "name": "String",
    "input": "UpdateCampaignInput!",
}
PAYLOAD = f"campaign {{ {CAMPAIGN_FIELDS} }} userErrors {{ field message code }}"


async def mutate(api: Api, call: str, selection: str = PAYLOAD, **variables: Any) -> dict[str, Any]:
    """Run `call` (e.g. 'pauseCampaign(id: $id)') and return its payload."""
    declared = ", ".join(f"${k}: {_TYPES[k]}" for k in variables)
    query = f"mutation({declared}) {{ {call} {{ {selection} }} }}"
    return (await api.gql(query, **variables))[call.split("(")[0]]


async def settle_outcomes(campaign_id: int, sent: int, failed: int, code: str = "131000") -> None:
    """Record provider outcomes for the first `sent + failed` pending messages, the way
    the sending engine does: message rows and counters together."""
    ids = (
        await Message.filter(campaign_id=campaign_id, status="PENDING")
        .order_by("id")
        .limit(sent + failed)
        .values_list("id", flat=True)
    )
    now = datetime.now(UTC)
    await Message.filter(id__in=ids[:sent]).update(status="SENT", sent_at=now, attempts=1)
    await Message.filter(id__in=ids[sent:]).update(
        status="FAILED", failed_at=now, attempts=1, error_code=code, error_message="Something went wrong"
    )
    campaign = await Campaign.get(id=campaign_id)
    await Campaign.filter(id=campaign_id).update(
        pending=campaign.pending - sent - failed, sent=campaign.sent + sent, failed=campaign.failed + failed
    )


async def campaign_in(api: Api, status: CampaignStatus, recipients: int = 3) -> dict[str, Any]:
    """A new campaign of `api`'s workspace in `status`; returns its GraphQL view."""
    campaign = await api.ready_campaign(recipients)
    gid = campaign["id"]
    pk = expect_id(gid, "Campaign")
    if status is S.DRAFT:
        return campaign
    if status in (S.SCHEDULED, S.CANCELLED):
        scheduled = _ok(await mutate(api, "scheduleCampaign(id: $id, scheduledAt: $at)", id=gid, at=future()))
        if status is S.SCHEDULED:
            return scheduled
        return _ok(await mutate(api, "cancelCampaign(id: $id)", id=gid))
    _ok(await mutate(api, "sendCampaignNow(id: $id)", id=gid))
    if status is S.QUEUED:
        return await _view(api, gid)
    if status is S.PAUSED:
        return _ok(await mutate(api, "pauseCampaign(id: $id)", id=gid))
    if status is S.FAILED:
        assert await apply_system_action(pk, Action.FAIL, actor="worker", reason="provider rejected the token")
        return await _view(api, gid)
    assert await apply_system_action(pk, Action.CLAIM, actor="worker")
    if status is S.PROCESSING:
        return await _view(api, gid)
    assert status is S.COMPLETED
    await settle_outcomes(pk, sent=recipients - 1, failed=1)
    assert await apply_system_action(pk, Action.COMPLETE, actor="worker")
    return await _view(api, gid)


def _ok(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["userErrors"] == [], payload
    return payload["campaign"]


async def _view(api: Api, gid: str) -> dict[str, Any]:
    data = await api.gql(f"query($id: ID!) {{ campaign(id: $id) {{ {CAMPAIGN_FIELDS} }} }}", id=gid)
    return data["campaign"]
