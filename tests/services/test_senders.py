"""services/senders.py against the real test database: inputs checked all at once, the
number checked with the Cloud API before anything is written (here a scripted
NumberChecker, a fake of our own Protocol; tests/schema/test_senders.py checks against
the simulator), the token sealed, one live sender per number, the default kept, and
disconnection refused while a campaign sends."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from domain.errors import Conflict, InvalidInput, NotFound, ValidationFailed
from domain.ids import expect_id
from domain.lifecycle import Action
from domain.senders import Tier
from models import Campaign, Sender, Template
from providers.whatsapp import LookupRefused, NumberInfo
from services import senders
from services.tokens import TokenBox
from services.transitions import apply_action
from settings import Settings
from tests.conftest import Api

BOX = TokenBox(Settings().sender_token_key)
HIGH = NumberInfo("15550009999", "Acme", "HIGH", "TIER_10K")


@dataclass
class Checker:
    """Answers lookups as scripted; remembers what it was asked."""

    answer: NumberInfo | LookupRefused = HIGH
    asked: list[tuple[str, str]] = field(default_factory=list)

    async def lookup_number(self, phone_number_id: str, access_token: str) -> NumberInfo | LookupRefused:
        self.asked.append((phone_number_id, access_token))
        return self.answer


_numbers = iter(range(10**9))


def number() -> str:
    return f"7{next(_numbers):014d}"


async def connect(api: Api, checker: Checker | None = None, **given: object) -> senders.SenderView:
    options: dict[str, object] = {
        "name": "Main line",
        "waba_id": "200000000000001",
        "phone_number_id": number(),
        "access_token": "EAAG-token",
    } | given
    return await senders.connect_sender(api.principal, BOX, checker or Checker(), **options)  # type: ignore[arg-type]


async def live(api: Api) -> list[Sender]:
    return await Sender.filter(workspace_id=api.principal.workspace_id, disconnected_at__isnull=True).order_by("id")


async def test_a_sender_is_checked_then_stored_with_its_token_sealed(api: Api) -> None:
    checker = Checker()
    view = await connect(api, checker, phone_number_id="700000000000001", access_token="EAAG-secret")
    assert checker.asked == [("700000000000001", "EAAG-secret")]
    (row,) = await live(api)
    assert row.access_token_sealed != "EAAG-secret" and "EAAG-secret" not in row.access_token_sealed
    assert BOX.open(row.access_token_sealed) == "EAAG-secret"
    assert (view.display_phone_number, view.verified_name, view.throughput) == ("15550009999", "Acme", 1000)
    assert view.messaging_tier is Tier.TIER_10K and view.is_default  # the first one is the default
    assert "EAAG" not in repr(view)
    creds = await senders.credentials(BOX, view.id)
    assert creds is not None and (creds.phone_number_id, creds.access_token, creds.throughput) == (
        "700000000000001",
        "EAAG-secret",
        1000,
    )


async def test_every_bad_input_is_reported_at_once_and_nothing_is_asked_or_written(api: Api) -> None:
    checker = Checker()
    with pytest.raises(InvalidInput) as caught:
        await connect(
            api, checker, name=" ", waba_id="waba", phone_number_id="+1 555", access_token="a b", throughput=0
        )
    assert [e.field for e in caught.value.errors] == [
        ("name",),
        ("wabaId",),
        ("phoneNumberId",),
        ("accessToken",),
        ("throughput",),
    ]
    assert checker.asked == [] and await live(api) == []


@pytest.mark.parametrize(
    ("refusal", "field"),
    [
        (LookupRefused(190, "Invalid OAuth access token"), "accessToken"),
        (LookupRefused(100, "Unsupported get request"), "phoneNumberId"),
        (LookupRefused(None, "the Cloud API could not be reached (ClientConnectorError)"), "phoneNumberId"),
    ],
)
async def test_a_number_the_cloud_api_refuses_is_not_connected(api: Api, refusal: LookupRefused, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await connect(api, Checker(refusal))
    assert caught.value.field == (field,) and refusal.message in caught.value.message
    assert await live(api) == []


async def test_a_number_is_live_in_one_workspace_at_most(api: Api, other_api: Api) -> None:
    taken = number()
    await connect(api, phone_number_id=taken)
    for who in (api, other_api):
        with pytest.raises(Conflict) as caught:
            await connect(who, phone_number_id=taken)
        assert caught.value.field == ("phoneNumberId",)
    # two connections racing for one number: the partial unique index keeps one
    racing = number()
    results = await asyncio.gather(
        connect(api, phone_number_id=racing), connect(other_api, phone_number_id=racing), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "SenderView"]
    assert await Sender.filter(phone_number_id=racing, disconnected_at__isnull=True).count() == 1


async def test_the_default_moves_when_asked_and_when_it_is_disconnected(api: Api) -> None:
    first = await connect(api)
    second = await connect(api, make_default=True)
    assert [(s.id, s.is_default) for s in await senders.list_senders(api.principal.workspace_id)] == [
        (second.id, True),
        (first.id, False),
    ]
    assert await senders.default_sender_id(api.principal.workspace_id) == second.id
    await senders.disconnect_sender(api.principal, second.id)
    assert await senders.default_sender_id(api.principal.workspace_id) == first.id
    assert await senders.credentials(BOX, second.id) is None
    gone = await Sender.get(id=second.id)
    assert gone.disconnected_at is not None and gone.access_token_sealed == ""


async def test_a_sender_a_campaign_sends_from_cannot_be_disconnected(api: Api) -> None:
    sender = await connect(api)
    await Template.create(
        sender_id=sender.id,
        meta_id="1",
        name="hello_world",
        language="en_US",
        status="APPROVED",
        category="UTILITY",
        parameter_format="POSITIONAL",
        body="Hello",
        parameters=[],
        synced_at=datetime.now(UTC),
    )
    hello = {"templateName": "hello_world", "templateLanguage": "en_US", "body": "Hello"}
    draft = await api.ready_campaign(1, **hello)
    queued = await api.ready_campaign(1, **hello)
    await apply_action(api.principal, expect_id(queued["id"], "Campaign"), Action.SEND_NOW)
    for c in (draft, queued):
        assert (await Campaign.get(id=expect_id(c["id"], "Campaign"))).sender_id == sender.id  # the default
    with pytest.raises(Conflict) as caught:
        await senders.disconnect_sender(api.principal, sender.id)
    assert "QUEUED" in caught.value.message
    await apply_action(api.principal, expect_id(queued["id"], "Campaign"), Action.CANCEL)
    await senders.disconnect_sender(api.principal, sender.id)
    # the draft falls back to the default (now the bootstrap sender), the cancelled one keeps its history
    assert (await Campaign.get(id=expect_id(draft["id"], "Campaign"))).sender_id is None
    assert (await Campaign.get(id=expect_id(queued["id"], "Campaign"))).sender_id == sender.id


async def test_update_checks_a_new_token_and_changes_only_what_is_given(api: Api) -> None:
    sender = await connect(api, throughput=40)
    refusing = Checker(LookupRefused(190, "Error validating access token"))
    with pytest.raises(ValidationFailed) as caught:
        await senders.update_sender(api.principal, BOX, refusing, sender.id, access_token="EAAG-expired")
    assert caught.value.field == ("accessToken",)
    assert BOX.open((await Sender.get(id=sender.id)).access_token_sealed) == "EAAG-token"
    with pytest.raises(ValidationFailed):
        await senders.update_sender(api.principal, BOX, Checker(), sender.id, throughput=5000)
    updated = await senders.update_sender(
        api.principal, BOX, Checker(), sender.id, name="Renamed", access_token="EAAG-2"
    )
    assert (updated.name, updated.throughput) == ("Renamed", 40)
    assert BOX.open((await Sender.get(id=sender.id)).access_token_sealed) == "EAAG-2"


async def test_another_workspaces_sender_is_not_found(api: Api, other_api: Api) -> None:
    theirs = await connect(other_api)
    with pytest.raises(NotFound) as caught:
        await senders.pick_sender(api.principal, theirs.id)
    assert caught.value.field == ("senderId",)
    with pytest.raises(NotFound):
        await senders.update_sender(api.principal, BOX, Checker(), theirs.id, name="x")
    with pytest.raises(NotFound):
        await senders.disconnect_sender(api.principal, theirs.id)
    assert await senders.list_senders(api.principal.workspace_id) == []
    assert await senders.live_or_default(api.principal.workspace_id, None) is None
