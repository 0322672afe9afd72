"""schema/errors.py: a domain error as the contract's `userErrors` entry (its message,
its code, the path of the input at fault, renamed to where the client put it), and
UserErrorCode as the served enum of the domain's codes."""

from __future__ import annotations

from domain.errors import ErrorCode, InvalidInput, InvalidTransition, NotFound, ValidationFailed
from domain.ids import to_global_id
from schema.errors import UserError
from tests.conftest import Api
from tests.schema.states import mutate


def test_a_domain_error_keeps_its_message_code_and_field_path() -> None:
    error = UserError.of(ValidationFailed("name is at most 200 characters.", ("input", "name")))
    assert (error.field, error.message, error.code) == (
        ["input", "name"],
        "name is at most 200 characters.",
        ErrorCode.VALIDATION,
    )
    transition = UserError.of(InvalidTransition("QUEUED", "EDIT", ["PAUSE", "CANCEL"]))
    assert transition.code is ErrorCode.INVALID_TRANSITION
    assert transition.field == ["id"]
    assert transition.message == "Cannot EDIT a campaign that is QUEUED; allowed actions: PAUSE, CANCEL."


def test_an_error_about_no_one_field_has_a_null_field() -> None:
    assert UserError.of(NotFound("Gone.")).field is None
    assert UserError.of(NotFound("Gone.", ())).field is None
    assert UserError.of(NotFound("Gone."), {"id": ["input", "id"]}).field is None


def test_rename_replaces_the_first_step_only_and_leaves_other_fields_alone() -> None:
    rename = {"id": ["input", "campaignId"]}
    assert UserError.of(NotFound("No.", ("id",)), rename).field == ["input", "campaignId"]
    assert UserError.of(ValidationFailed("No.", ("id", "3")), rename).field == ["input", "campaignId", "3"]
    assert UserError.of(ValidationFailed("No.", ("name",)), rename).field == ["name"]
    assert UserError.of(ValidationFailed("No.", ("input", "id")), rename).field == ["input", "id"]
    assert rename == {"id": ["input", "campaignId"]}  # the table is shared by every call: never changed


def test_all_gives_one_entry_per_field_of_an_invalid_input() -> None:
    name, rate = ValidationFailed("name is empty.", ("name",)), ValidationFailed("sendRate is 0.", ("sendRate",))
    rename = {"name": ["input", "name"], "sendRate": ["input", "sendRate"]}
    entries = UserError.all(InvalidInput([name, rate]), rename)
    assert [(e.field, e.message, e.code) for e in entries] == [
        (["input", "name"], "name is empty.", ErrorCode.VALIDATION),
        (["input", "sendRate"], "sendRate is 0.", ErrorCode.VALIDATION),
    ]
    [single] = UserError.all(NotFound("No campaign.", ("id",)), {"id": ["input", "id"]})
    assert (single.field, single.code) == (["input", "id"], ErrorCode.NOT_FOUND)


async def test_the_served_enum_is_every_domain_code_and_user_error_is_as_the_contract_says(api: Api) -> None:
    data = await api.gql(
        """{ codes: __type(name: "UserErrorCode") { kind enumValues { name } }
             error: __type(name: "UserError") { fields { name type { kind name ofType { kind name ofType { name } } } } } }"""
    )
    assert data["codes"]["kind"] == "ENUM"
    assert {v["name"] for v in data["codes"]["enumValues"]} == {code.value for code in ErrorCode}
    fields = {f["name"]: f["type"] for f in data["error"]["fields"]}
    assert fields["field"] == {
        "kind": "LIST",
        "name": None,
        "ofType": {"kind": "NON_NULL", "name": None, "ofType": {"name": "String"}},
    }
    assert fields["message"]["kind"] == "NON_NULL" and fields["message"]["ofType"]["name"] == "String"
    assert fields["code"]["kind"] == "NON_NULL" and fields["code"]["ofType"]["name"] == "UserErrorCode"


async def test_a_renamed_path_points_at_the_input_the_client_sent(api: Api) -> None:
    missing = to_global_id("Campaign", 987_654_321)
    selection = "userErrors { field message code }"
    update = await mutate(api, "updateCampaign(input: $input)", selection, input={"id": missing, "name": "x"})
    assert update["userErrors"] == [
        {"field": ["input", "id"], "message": f"No campaign with id {missing!r}.", "code": "NOT_FOUND"}
    ]
    remove = await api.gql(
        "mutation($id: ID!) { removeRecipients(input: {campaignId: $id, phones: []}) { userErrors { field code } } }",
        id=missing,
    )
    assert remove["removeRecipients"]["userErrors"] == [{"field": ["input", "campaignId"], "code": "NOT_FOUND"}]
    # no rename where the argument is top-level
    pause = await mutate(api, "pauseCampaign(id: $id)", selection, id=missing)
    assert [e["field"] for e in pause["userErrors"]] == [["id"]]
