"""sendTestMessage: one rendered message to one phone now, outside the campaign's
recipients and numbers (kept in its own table, so reports never count it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from domain.errors import ValidationFailed
from domain.messages import MessageStatus
from domain.recipients import InvalidRecipient, recipient
from domain.sending import Outcome, Provider, SendRequest
from domain.templates import missing_variables, placeholders, render
from models import OptOut, TestMessage
from services.auth import Principal
from services.campaigns import get_campaign


async def send_test_message(
    principal: Principal, pk: int, phone: str, variables: Any, provider: Provider
) -> TestMessage:
    campaign = await get_campaign(principal, pk)
    try:
        e164, _ = recipient(phone, None)
    except InvalidRecipient as exc:
        raise ValidationFailed(f"phone: {exc}.", ("phone",)) from None
    try:
        values = json.loads(recipient(e164, variables)[1])
    except InvalidRecipient as exc:
        raise ValidationFailed(f"variables: {exc}.", ("variables",)) from None
    names = placeholders(campaign.body)
    lacking = missing_variables(names, values)
    if lacking:
        raise ValidationFailed(f"variables lack {', '.join(lacking)}, which the body uses.", ("variables",))
    if await OptOut.exists(workspace_id=principal.workspace_id, phone=e164):
        raise ValidationFailed(f"{e164} opted out of this workspace's messages.", ("phone",))
    row = await TestMessage.create(
        campaign_id=campaign.id, phone=e164, variables=values, status=MessageStatus.SENDING, attempts=1
    )
    result = await provider.send(
        SendRequest(
            message_id=row.id,
            campaign_id=campaign.id,
            phone=e164,
            body=render(campaign.body, values),
            template_name=campaign.template_name,
            template_language=campaign.template_language,
            parameters=tuple(str(values.get(n, "")) for n in names),
            key=f"test-{row.id}",
        )
    )
    now = datetime.now(UTC)
    if result.outcome is Outcome.ACCEPTED:
        changes: dict[str, Any] = {"status": MessageStatus.SENT, "sent_at": now}
        changes["provider_message_id"] = result.provider_message_id
    else:
        changes = {"status": MessageStatus.FAILED, "failed_at": now}
        changes |= {"error_code": result.error_code, "error_message": result.error_message}
    await TestMessage.filter(id=row.id).update(**changes)
    await row.refresh_from_db()
    return row
