"""schema/enums.py: enum answers by table, the same as Strawberry's scan."""

from __future__ import annotations

from enum import Enum

import pytest
import strawberry
from strawberry.schema.schema_converter import CustomGraphQLEnumType

from domain.lifecycle import CampaignStatus
from schema.app import schema
from schema.enums import index_enum_outputs


def test_every_enum_of_the_schema_answers_each_member_as_strawberrys_scan_does() -> None:
    enums = [t for t in schema._schema.type_map.values() if isinstance(t, CustomGraphQLEnumType)]
    member: Enum
    assert {"CampaignStatus", "CampaignAction", "MessageStatus"} <= {t.name for t in enums}
    for enum_type in enums:
        for member in enum_type.wrapped_cls:
            assert enum_type.coerce_output_value(member) == CustomGraphQLEnumType.coerce_output_value(enum_type, member)
            assert enum_type.serialize(member) == enum_type.coerce_output_value(member)


def test_a_value_outside_the_enum_is_refused_as_before() -> None:
    status = schema._schema.type_map["CampaignStatus"]
    assert isinstance(status, CustomGraphQLEnumType)
    assert status.coerce_output_value(CampaignStatus.DRAFT) == "DRAFT"
    assert status.coerce_output_value("PAUSED") == "PAUSED"  # a raw value: graphql-core's own coercion
    with pytest.raises(Exception) as indexed:
        status.coerce_output_value("NOPE")
    with pytest.raises(Exception) as scanned:
        CustomGraphQLEnumType.coerce_output_value(status, "NOPE")
    assert type(indexed.value) is type(scanned.value) and str(indexed.value) == str(scanned.value)


class Twins(Enum):
    FIRST = "x"
    SECOND = "x"  # an alias of FIRST
    OTHER = "y"


TwinsType = strawberry.enum(Twins)


@strawberry.type
class TwinsQuery:
    @strawberry.field
    def both(self) -> list[TwinsType]:  # type: ignore[valid-type]
        return [Twins.FIRST, Twins.SECOND, Twins.OTHER]


def test_members_with_equal_values_answer_the_first_name_as_the_scan_does() -> None:
    built = index_enum_outputs(strawberry.Schema(query=TwinsQuery))
    result = built.execute_sync("{ both }")
    assert result.errors is None and result.data == {"both": ["FIRST", "FIRST", "OTHER"]}
