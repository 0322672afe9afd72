"""services.campaigns on the real database: create, edit, delete and duplicate, each
gated by a conditional statement on (id, workspace, status[, version]), and the
refusals (NOT_FOUND, INVALID_TRANSITION, CONFLICT) a gated write that matched nothing
turns into."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from domain.campaign_input import MAX_NAME
from domain.errors import Conflict, DomainError, InvalidInput, InvalidTransition, NotFound, ValidationFailed
from domain.ids import expect_id, to_global_id
from domain.lifecycle import Action, CampaignStatus
from models import Campaign, CampaignEvent, Message
from services import campaigns
from services.auth import Principal
from services.campaigns import (
    create_campaign,
    delete_campaign,
    duplicate_campaign,
    get_campaign,
    refusal,
    update_campaign,
)
from services.recipients import add_recipients
from services.transitions import apply_action
from tests.conftest import Api, phone
from tests.schema.states import campaign_in, future

MISSING = 987_654_321


def code_and_field(error: DomainError) -> tuple[str, tuple[str, ...] | None]:
    return error.code.value, error.field


async def draft(api: Api, n: int = 0, **given: Any) -> Campaign:
    campaign = await create_campaign(api.principal, {"name": "Spring sale", "body": "Hi {{name}}"} | given)
    if n:
        report = await add_recipients(api.principal, campaign.id, [(phone(i), {"name": f"U{i}"}) for i in range(n)])
        assert report.added == n
    return await Campaign.get(id=campaign.id)


async def test_a_new_campaign_is_a_draft_of_the_callers_workspace_with_its_creation_event(api: Api) -> None:
    campaign = await create_campaign(
        api.principal,
        {
            "name": "  Launch  ",
            "body": "Hello {{name}}",
            "templateName": "launch_v2",
            "templateLanguage": "en_US",
            "sendRate": 20,
            "failureThreshold": 0.25,
            "failureSampleSize": 40,
        },
    )
    stored = await Campaign.get(id=campaign.id)
    assert (stored.workspace_id, stored.status, stored.version, stored.total) == (
        api.principal.workspace_id,
        CampaignStatus.DRAFT,
        1,
        0,
    )
    assert (stored.name, stored.template_name, stored.template_language) == ("Launch", "launch_v2", "en_US")
    assert (stored.send_rate, stored.failure_threshold, stored.failure_sample_size) == (20, 0.25, 40)
    [event] = await CampaignEvent.filter(campaign_id=campaign.id)
    assert (event.from_status, event.to_status, event.action, event.actor, event.reason) == (
        None,
        CampaignStatus.DRAFT,
        "CREATE",
        "tester",
        None,
    )


async def test_every_bad_field_of_a_new_campaign_is_reported_and_nothing_is_written(api: Api) -> None:
    before = await Campaign.filter(workspace_id=api.principal.workspace_id).count()
    with pytest.raises(InvalidInput) as refused:
        await create_campaign(api.principal, {"name": " ", "body": "Hi", "sendRate": 0})
    assert refused.value.code.value == "VALIDATION"
    assert [e.field for e in refused.value.errors] == [("input", "name"), ("input", "sendRate")]
    with pytest.raises(ValidationFailed) as missing:
        await create_campaign(api.principal, {"name": "No body"})
    assert code_and_field(missing.value) == ("VALIDATION", ("input", "body"))
    assert await Campaign.filter(workspace_id=api.principal.workspace_id).count() == before


async def test_another_workspaces_campaign_is_not_found_exactly_like_a_missing_one(api: Api, other_api: Api) -> None:
    theirs = await draft(other_api)
    with pytest.raises(NotFound) as foreign:
        await get_campaign(api.principal, theirs.id)
    with pytest.raises(NotFound) as missing:
        await get_campaign(api.principal, MISSING, ("input", "campaignId"))
    assert code_and_field(foreign.value) == ("NOT_FOUND", ("id",))
    assert code_and_field(missing.value) == ("NOT_FOUND", ("input", "campaignId"))
    assert to_global_id("Campaign", theirs.id) in foreign.value.message
    assert foreign.value.message.replace(to_global_id("Campaign", theirs.id), "?") == missing.value.message.replace(
        to_global_id("Campaign", MISSING), "?"
    )
    assert (await get_campaign(other_api.principal, theirs.id)).id == theirs.id


async def test_an_edit_bumps_the_version_once_and_an_empty_edit_writes_nothing(api: Api) -> None:
    campaign = await draft(api, sendRate=50)
    edited = await update_campaign(api.principal, campaign.id, {"name": "Summer sale", "sendRate": None})
    assert (edited.name, edited.send_rate, edited.body, edited.version) == ("Summer sale", None, "Hi {{name}}", 2)
    unchanged = await update_campaign(api.principal, campaign.id, {})
    assert unchanged.version == 2
    assert (await Campaign.get(id=campaign.id)).version == 2


async def test_an_edit_checks_the_template_language_against_what_is_stored(api: Api) -> None:
    plain = await draft(api)
    with pytest.raises(ValidationFailed) as refused:
        await update_campaign(api.principal, plain.id, {"templateName": "promo"})
    assert code_and_field(refused.value) == ("VALIDATION", ("input", "templateLanguage"))
    assert (await Campaign.get(id=plain.id)).template_name is None
    templated = await draft(api, templateName="promo", templateLanguage="en")
    renamed = await update_campaign(api.principal, templated.id, {"templateName": "promo_v2"})
    assert (renamed.template_name, renamed.template_language) == ("promo_v2", "en")  # the stored language holds
    with pytest.raises(ValidationFailed) as cleared:
        await update_campaign(api.principal, templated.id, {"templateLanguage": None})
    assert code_and_field(cleared.value) == ("VALIDATION", ("input", "templateLanguage"))
    assert (await Campaign.get(id=templated.id)).template_language == "en"


async def test_editing_a_campaign_that_left_draft_is_an_invalid_transition(api: Api) -> None:
    campaign = await draft(api, n=1)
    await apply_action(api.principal, campaign.id, Action.SCHEDULE, scheduled_at=_future())
    with pytest.raises(InvalidTransition) as refused:
        await update_campaign(api.principal, campaign.id, {"name": "Too late"})
    error = refused.value
    assert code_and_field(error) == ("INVALID_TRANSITION", ("id",))
    assert (error.status, error.action, error.allowed) == (
        "SCHEDULED",
        "EDIT",
        ("RESCHEDULE", "UNSCHEDULE", "CANCEL", "DUPLICATE"),
    )
    assert (await Campaign.get(id=campaign.id)).name == "Spring sale"


async def test_an_edit_that_lost_a_race_to_another_edit_is_a_conflict_and_writes_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another edit commits between this edit's read and its conditional UPDATE: the
    version no longer matches, the campaign is still a DRAFT, so: CONFLICT."""
    campaign = await draft(api)
    real = campaigns.get_campaign
    raced: list[int] = []

    async def racing_read(principal: Principal, pk: int, field: tuple[str, ...] = ("id",)) -> Campaign:
        read = await real(principal, pk, field)
        if not raced:
            raced.append(pk)
            await update_campaign(api.principal, pk, {"body": "Changed by the other edit"})
        return read

    monkeypatch.setattr(campaigns, "get_campaign", racing_read)
    with pytest.raises(Conflict) as refused:
        await update_campaign(api.principal, campaign.id, {"name": "Mine"})
    assert code_and_field(refused.value) == ("CONFLICT", ("id",))
    stored = await Campaign.get(id=campaign.id)
    assert (stored.name, stored.body, stored.version) == ("Spring sale", "Changed by the other edit", 2)


async def test_an_edit_that_lost_a_race_to_a_schedule_is_an_invalid_transition(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = await draft(api, n=2)
    real = campaigns.get_campaign
    raced: list[int] = []

    async def racing_read(principal: Principal, pk: int, field: tuple[str, ...] = ("id",)) -> Campaign:
        read = await real(principal, pk, field)
        if not raced:
            raced.append(pk)
            await apply_action(api.principal, pk, Action.SCHEDULE, scheduled_at=_future())
        return read

    monkeypatch.setattr(campaigns, "get_campaign", racing_read)
    with pytest.raises(InvalidTransition) as refused:
        await update_campaign(api.principal, campaign.id, {"name": "Mine"})
    assert refused.value.status == "SCHEDULED"
    stored = await Campaign.get(id=campaign.id)
    assert (stored.status, stored.name) == (CampaignStatus.SCHEDULED, "Spring sale")


async def test_refusal_says_why_a_gated_write_matched_no_row(api: Api) -> None:
    campaign = await draft(api)
    changed = await refusal(api.principal, campaign.id, Action.EDIT)
    assert isinstance(changed, Conflict) and changed.field == ("id",)  # still allowed: it changed meanwhile
    queued = await campaign_in(api, CampaignStatus.QUEUED)
    forbidden = await refusal(api.principal, _pk(queued), Action.DELETE)
    assert isinstance(forbidden, InvalidTransition) and (forbidden.status, forbidden.action) == ("QUEUED", "DELETE")
    with pytest.raises(NotFound):
        await refusal(api.principal, MISSING, Action.DELETE)


async def test_deleting_a_draft_takes_its_messages_and_events_with_it(api: Api) -> None:
    campaign = await draft(api, n=3)
    await delete_campaign(api.principal, campaign.id)
    assert not await Campaign.exists(id=campaign.id)
    assert await Message.filter(campaign_id=campaign.id).count() == 0
    assert await CampaignEvent.filter(campaign_id=campaign.id).count() == 0


async def test_delete_is_refused_outside_draft_and_for_another_workspace_and_deletes_nothing(
    api: Api, other_api: Api
) -> None:
    scheduled = await campaign_in(api, CampaignStatus.SCHEDULED)
    with pytest.raises(InvalidTransition) as refused:
        await delete_campaign(api.principal, _pk(scheduled))
    assert code_and_field(refused.value) == ("INVALID_TRANSITION", ("id",)) and refused.value.status == "SCHEDULED"
    theirs = await draft(other_api, n=1)
    with pytest.raises(NotFound):
        await delete_campaign(api.principal, theirs.id)
    assert await Campaign.exists(id=_pk(scheduled)) and await Campaign.exists(id=theirs.id)
    assert await Message.filter(campaign_id=theirs.id).count() == 1


async def test_a_duplicate_copies_content_settings_and_recipients_into_a_fresh_draft(api: Api) -> None:
    view = await campaign_in(api, CampaignStatus.COMPLETED, recipients=4)
    source = await Campaign.get(id=_pk(view))
    await Campaign.filter(id=source.id).update(send_rate=30, failure_threshold=0.5, failure_sample_size=12)
    copy = await duplicate_campaign(api.principal, source.id, None)
    assert (copy.name, copy.status, copy.version, copy.workspace_id) == (
        "Spring sale (copy)",
        CampaignStatus.DRAFT,
        1,
        api.principal.workspace_id,
    )
    assert (copy.body, copy.channel, copy.template_name, copy.template_language) == (
        source.body,
        source.channel,
        source.template_name,
        source.template_language,
    )
    assert (copy.send_rate, copy.failure_threshold, copy.failure_sample_size) == (30, 0.5, 12)
    assert (copy.total, copy.pending, copy.sent, copy.failed, copy.scheduled_at) == (4, 4, 0, 0, None)
    originals = await Message.filter(campaign_id=source.id).order_by("id").values_list("phone", "variables")
    copied = await Message.filter(campaign_id=copy.id).order_by("id")
    assert [(m.phone, m.variables) for m in copied] == list(originals)  # in the same order
    assert {(m.status, m.attempts, m.send_round, m.provider_message_id, m.error_code, m.sent_at) for m in copied} == {
        ("PENDING", 0, 0, None, None, None)
    }
    [event] = await CampaignEvent.filter(campaign_id=copy.id)
    assert (event.from_status, event.to_status, event.action, event.actor, event.reason) == (
        None,
        CampaignStatus.DRAFT,
        "CREATE",
        "tester",
        f"duplicate of {view['id']}",
    )


async def test_a_duplicates_name_is_trimmed_or_derived_to_fit(api: Api) -> None:
    long = await draft(api, name="x" * MAX_NAME)
    derived = await duplicate_campaign(api.principal, long.id, None)
    assert derived.name == "x" * (MAX_NAME - 7) + " (copy)" and len(derived.name) == MAX_NAME
    given = await duplicate_campaign(api.principal, long.id, "  Autumn sale  ")
    assert given.name == "Autumn sale"


async def test_a_duplicates_too_long_name_is_refused_naming_the_field_and_creates_nothing(api: Api) -> None:
    source = await draft(api, n=1)
    before = await Campaign.filter(workspace_id=api.principal.workspace_id).count()
    with pytest.raises(ValidationFailed) as refused:
        await duplicate_campaign(api.principal, source.id, "x" * (MAX_NAME + 1))
    assert code_and_field(refused.value) == ("VALIDATION", ("name",))
    assert await Campaign.filter(workspace_id=api.principal.workspace_id).count() == before


async def test_a_duplicates_name_no_database_can_store_is_refused_like_a_new_campaigns(api: Api) -> None:
    """createCampaign and updateCampaign refuse a lone UTF-16 surrogate (JSON's "\\ud800")
    as VALIDATION on the name; duplicateCampaign's name must be refused alike, not
    reach the INSERT and fail there as an internal error."""
    source = await draft(api, n=1)
    with pytest.raises(ValidationFailed) as created:
        await create_campaign(api.principal, {"name": "\ud800 sale", "body": "Hi"})
    assert code_and_field(created.value) == ("VALIDATION", ("input", "name"))
    before = await Campaign.filter(workspace_id=api.principal.workspace_id).count()
    with pytest.raises(ValidationFailed) as refused:
        await duplicate_campaign(api.principal, source.id, "\ud800 sale")
    assert code_and_field(refused.value) == ("VALIDATION", ("name",))
    assert await Campaign.filter(workspace_id=api.principal.workspace_id).count() == before


async def test_another_workspaces_campaign_cannot_be_duplicated(api: Api, other_api: Api) -> None:
    theirs = await draft(other_api, n=2)
    before = await Campaign.filter(workspace_id=api.principal.workspace_id).count()
    with pytest.raises(NotFound) as refused:
        await duplicate_campaign(api.principal, theirs.id, "Mine now")
    assert code_and_field(refused.value) == ("NOT_FOUND", ("id",))
    assert await Campaign.filter(workspace_id=api.principal.workspace_id).count() == before


def _pk(view: dict[str, Any]) -> int:
    return expect_id(view["id"], "Campaign")


def _future() -> datetime:
    return datetime.fromisoformat(future())
