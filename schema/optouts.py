"""The opt-out list in GraphQL: `optOuts` (read), `addOptOuts` and `removeOptOut`
(write), `setStopKeywords` (admin); scopes in domain/access.py. The CSV import and
export of the list are web/csv_routes.py's."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.errors import DomainError
from domain.ids import encode_cursor, to_global_id
from domain.optouts import OptOutSource as Source
from schema.context import Context
from schema.errors import UserError
from schema.mutations import InvalidRecipient
from schema.types import Node, PageInfo, page_window
from services import optouts as service
from services.reads import MAX_PAGE

Info = strawberry.Info[Context, None]

OptOutSource = strawberry.enum(
    Source,
    name="OptOutSource",
    description=(
        "Where an opt-out came from: MANUAL (addOptOuts, the CSV import), ERROR_131050 (WhatsApp refused a "
        "message: the user stopped marketing messages), USER_PREFERENCES (the user stopped them in WhatsApp), "
        "KEYWORD (the user replied with a stop keyword)."
    ),
)


@strawberry.type(description="A phone the workspace must not message: no campaign sends to it.")
class OptOut(Node):
    phone: str = strawberry.field(description="E.164")
    source: OptOutSource  # type: ignore[valid-type]
    detail: str | None = strawberry.field(description="The keyword, the error, the webhook's words, who added it.")
    created_at: datetime = strawberry.field(
        description="When the person opted out, where the source says; else when learned."
    )

    @classmethod
    def of(cls, row: service.OptOutRow) -> OptOut:
        return cls(
            id=strawberry.ID(to_global_id("OptOut", row.id)),
            phone=row.phone,
            source=row.source,
            detail=row.detail,
            created_at=row.created_at,
        )


@strawberry.type
class OptOutEdge:
    node: OptOut
    cursor: str


@strawberry.type
class OptOutConnection:
    edges: list[OptOutEdge]
    page_info: PageInfo
    _page: strawberry.Private[service.OptOutPage]

    @strawberry.field
    async def total_count(self) -> int:
        return await self._page.total_count()

    @classmethod
    def of(cls, page: service.OptOutPage) -> OptOutConnection:
        edges = [OptOutEdge(node=OptOut.of(r), cursor=encode_cursor(r.id)) for r in page.rows]
        return cls(edges=edges, page_info=PageInfo.of(page, [e.cursor for e in edges]), _page=page)


@strawberry.type
class AddOptOutsPayload:
    added: int = strawberry.field(description="phones new on the list")
    already_opted_out: int = strawberry.field(description="valid phones that were on it already (or given twice)")
    invalid: list[InvalidRecipient] = strawberry.field(
        description="phones refused, by their index; nothing written for them"
    )
    user_errors: list[UserError]


@strawberry.type
class RemoveOptOutPayload:
    opt_out: OptOut | None = strawberry.field(description="the opt-out removed, as it was")
    user_errors: list[UserError]


@strawberry.type
class StopKeywordsPayload:
    stop_keywords: list[str] | None
    user_errors: list[UserError]


@strawberry.type
class OptOutQueries:
    @strawberry.field(
        description=(
            f"The workspace's opt-outs, newest first. search: part of the phone (digits); first/after page "
            f"forward, last/before backward; at most {MAX_PAGE} a page, first is {service.OPT_OUTS_PAGE} "
            "unless last is given."
        )
    )
    async def opt_outs(
        self,
        info: Info,
        search: str | None = None,
        source: OptOutSource | None = None,  # type: ignore[valid-type]
        first: int | None = service.OPT_OUTS_PAGE,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> OptOutConnection:
        principal = info.context.require(info)
        window = page_window(info, first, after, last, before, service.OPT_OUTS_PAGE)
        return OptOutConnection.of(await service.list_opt_outs(principal, window, search, source))


@strawberry.type
class OptOutMutations:
    @strawberry.mutation(
        description=(
            "Adds phones to the opt-out list (write); no campaign sends to them, running ones included. "
            "Invalid phones are reported by index and not added; at most 10,000 a call (POST /opt-outs takes "
            "a CSV of any size)."
        )
    )
    async def add_opt_outs(self, info: Info, phones: list[str]) -> AddOptOutsPayload:
        try:
            principal = info.context.require(info)
            report = await service.add_opt_outs(principal, phones)
        except DomainError as error:
            return AddOptOutsPayload(added=0, already_opted_out=0, invalid=[], user_errors=UserError.all(error))
        return AddOptOutsPayload(
            added=report.added,
            already_opted_out=report.already,
            invalid=[InvalidRecipient(index=i, phone=p, reason=r) for i, p, r in report.invalid],
            user_errors=[],
        )

    @strawberry.mutation(description="Removes a phone from the opt-out list (write): campaigns may send to it again.")
    async def remove_opt_out(self, info: Info, phone: str) -> RemoveOptOutPayload:
        try:
            principal = info.context.require(info)
            row = await service.remove_opt_out(principal, phone)
        except DomainError as error:
            return RemoveOptOutPayload(opt_out=None, user_errors=UserError.all(error))
        return RemoveOptOutPayload(opt_out=OptOut.of(row), user_errors=[])

    @strawberry.mutation(
        description=(
            "The inbound messages that opt a phone out (admin): each compared with the whole message, trimmed "
            "and case-insensitive. Replaces the list; at least one, at most 50, each 1 to 40 characters."
        )
    )
    async def set_stop_keywords(self, info: Info, keywords: list[str]) -> StopKeywordsPayload:
        try:
            principal = info.context.require(info)
            kept = await service.set_stop_keywords(principal, keywords)
        except DomainError as error:
            return StopKeywordsPayload(stop_keywords=None, user_errors=UserError.all(error))
        return StopKeywordsPayload(stop_keywords=list(kept), user_errors=[])
