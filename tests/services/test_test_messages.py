"""services.test_messages.send_test_message (the "send a test message" feature) on the
real database: the message is rendered from the campaign, written SENDING before the
provider call and settled by its answer, outside the campaign's recipients and numbers;
bad input is refused naming the field before anything is written or sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from domain.errors import NotFound, ValidationFailed
from domain.messages import MessageStatus
from domain.sending import Outcome, SendRequest, SendResult
from models import Campaign, Message, OptOut
from models import TestMessage as SentTestMessage
from services.campaigns import create_campaign
from services.recipients import add_recipients
from services.test_messages import send_test_message
from tests.conftest import Api, phone

PHONE = "+14155552671"


@dataclass
class Recording:
    """A provider of our own Provider protocol: answers every call with `answer` and
    records each request with the row's status as the call saw it."""

    answer: SendResult = field(default_factory=lambda: SendResult(Outcome.ACCEPTED, provider_message_id="wamid.T1"))
    honours_idempotency: bool = False
    requests: list[SendRequest] = field(default_factory=list)
    row_during_call: list[tuple[str, int]] = field(default_factory=list)

    async def send(self, request: SendRequest) -> SendResult:
        self.requests.append(request)
        row = await SentTestMessage.get(id=request.message_id)
        self.row_during_call.append((str(row.status), row.attempts))
        return self.answer

    async def close(self) -> None:
        return None


async def campaign(api: Api, body: str = "Hi {{name}}, code {{code}}", **given: Any) -> int:
    created = await create_campaign(api.principal, {"name": "Launch", "body": body} | given)
    return created.id


async def rows_of(pk: int) -> int:
    return await SentTestMessage.filter(campaign_id=pk).count()


async def test_an_accepted_test_message_is_rendered_sent_and_recorded_outside_the_campaign(api: Api) -> None:
    pk = await campaign(
        api, body="Hi {{name}}, your code is {{ code }}. Bye {{name}}!", templateName="promo", templateLanguage="en"
    )
    await add_recipients(api.principal, pk, [(phone(1), {"name": "A", "code": "X"})])
    provider = Recording()
    before = await Campaign.get(id=pk)

    row = await send_test_message(api.principal, pk, "+1 (415) 555-2671", {"name": "Ada", "code": 42}, provider)

    [request] = provider.requests
    assert request == SendRequest(
        message_id=row.id,
        campaign_id=pk,
        phone=PHONE,
        body="Hi Ada, your code is 42. Bye Ada!",
        template_name="promo",
        template_language="en",
        parameters=("Ada", "42"),  # each placeholder once, in order of first appearance, as text
        key=f"test-{row.id}",
    )
    assert request.idempotency_key == f"test-{row.id}"
    assert provider.row_during_call == [("SENDING", 1)]  # written before the call
    stored = await SentTestMessage.get(id=row.id)
    assert (stored.status, stored.phone, stored.variables, stored.provider_message_id, stored.attempts) == (
        MessageStatus.SENT,
        PHONE,
        {"name": "Ada", "code": 42},
        "wamid.T1",
        1,
    )
    assert stored.sent_at is not None and stored.failed_at is None and stored.error_code is None
    assert (row.status, row.provider_message_id) == (stored.status, stored.provider_message_id)
    after = await Campaign.get(id=pk)
    assert (after.total, after.pending, after.sent, after.version) == (1, 1, 0, before.version)
    assert await Message.filter(campaign_id=pk).count() == 1  # not one of its recipients


@pytest.mark.parametrize(
    "answer",
    [
        SendResult(Outcome.PERMANENT, error_code="131026", error_message="Message undeliverable"),
        SendResult(Outcome.TRANSIENT, error_code="131000", error_message="Something went wrong", ambiguous=True),
        SendResult(Outcome.FATAL, error_code="190", error_message="Invalid OAuth access token"),
    ],
    ids=["permanent", "transient", "fatal"],
)
async def test_a_test_message_the_provider_did_not_accept_is_failed_with_its_error(
    api: Api, answer: SendResult
) -> None:
    pk = await campaign(api, body="Hello")
    row = await send_test_message(api.principal, pk, PHONE, None, Recording(answer))
    stored = await SentTestMessage.get(id=row.id)
    assert (stored.status, stored.error_code, stored.error_message, stored.provider_message_id) == (
        MessageStatus.FAILED,
        answer.error_code,
        answer.error_message,
        None,
    )
    assert stored.failed_at is not None and stored.sent_at is None
    assert row.status is MessageStatus.FAILED  # the returned row is the stored one
    assert (await Campaign.get(id=pk)).failed == 0


@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        (["Ada", "X"], "must be an object"),
        ({"name": {"first": "Ada"}, "code": "X"}, "must be a string, number or boolean"),
        ({"name": "Ada", "": "X"}, "non-empty strings"),
    ],
    ids=["not-an-object", "nested-value", "empty-name"],
)
async def test_variables_that_are_not_a_flat_object_are_refused_before_anything_is_sent(
    api: Api, variables: Any, reason: str
) -> None:
    pk = await campaign(api)
    provider = Recording()
    with pytest.raises(ValidationFailed) as refused:
        await send_test_message(api.principal, pk, PHONE, variables, provider)
    assert (refused.value.code.value, refused.value.field) == ("VALIDATION", ("variables",))
    assert refused.value.message.startswith("variables: ") and reason in refused.value.message
    assert provider.requests == [] and await rows_of(pk) == 0


async def test_every_placeholder_needs_a_value_and_an_empty_one_counts_as_missing(api: Api) -> None:
    pk = await campaign(api, body="Hi {{name}}, code {{code}}, from {{shop}}")
    provider = Recording()
    with pytest.raises(ValidationFailed) as refused:
        await send_test_message(api.principal, pk, PHONE, {"name": "", "shop": "Acme", "extra": 1}, provider)
    assert (refused.value.code.value, refused.value.field) == ("VALIDATION", ("variables",))
    assert "lack name, code," in refused.value.message  # all of them, in the body's order
    assert provider.requests == [] and await rows_of(pk) == 0
    plain = await campaign(api, body="No placeholders here")
    row = await send_test_message(api.principal, plain, PHONE, None, provider)
    assert (row.status, row.variables, provider.requests[-1].parameters) == (MessageStatus.SENT, {}, ())


async def test_a_phone_opted_out_of_this_workspace_is_refused_in_any_format(api: Api, other_api: Api) -> None:
    await OptOut.create(workspace_id=api.principal.workspace_id, phone=PHONE)
    pk = await campaign(api)
    provider = Recording()
    with pytest.raises(ValidationFailed) as refused:
        await send_test_message(api.principal, pk, "+1 415-555-2671", {"name": "A", "code": "X"}, provider)
    assert (refused.value.code.value, refused.value.field) == ("VALIDATION", ("phone",))
    assert PHONE in refused.value.message and "opted out" in refused.value.message
    assert provider.requests == [] and await rows_of(pk) == 0
    # another workspace's opt-out is not this one's
    theirs = await campaign(other_api)
    row = await send_test_message(other_api.principal, theirs, PHONE, {"name": "A", "code": "X"}, provider)
    assert row.status is MessageStatus.SENT


async def test_an_unusable_phone_is_refused_naming_the_phone(api: Api) -> None:
    pk = await campaign(api)
    provider = Recording()
    for bad in ("", "0044", "+1 415 555 26711234"):
        with pytest.raises(ValidationFailed) as refused:
            await send_test_message(api.principal, pk, bad, {"name": "A", "code": "X"}, provider)
        assert (refused.value.field, refused.value.message[:7]) == (("phone",), "phone: ")
    assert provider.requests == [] and await rows_of(pk) == 0


async def test_another_workspaces_campaign_is_not_found_before_any_input_is_checked(api: Api, other_api: Api) -> None:
    theirs = await campaign(other_api)
    provider = Recording()
    with pytest.raises(NotFound) as refused:
        await send_test_message(api.principal, theirs, "not a phone", ["bad"], provider)
    assert (refused.value.code.value, refused.value.field) == ("NOT_FOUND", ("id",))
    assert provider.requests == [] and await rows_of(theirs) == 0
