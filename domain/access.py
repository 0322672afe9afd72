"""What an API key may do: its scopes, and the one table of what each operation needs.

Queries and subscriptions need `read` unless QUERY_SCOPES says more. Each mutation needs
the scope in MUTATION_SCOPES; a mutation missing from the table needs `admin` (fail
closed), and a test checks that every mutation of the schema is in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from domain.errors import DomainError, ErrorCode, ValidationFailed


class Scope(StrEnum):
    #: queries, subscriptions, the CSV report
    READ = "read"
    #: create, edit, recipients (and the CSV import), delete, duplicate; and stopping a
    #: send (pause, cancel, unschedule), which never makes a message go out
    WRITE = "write"
    #: everything that starts or resumes sending: schedule, send now, resume, retries,
    #: test messages
    SEND = "send"
    #: API keys, webhook endpoints, sender accounts
    ADMIN = "admin"


ALL_SCOPES = frozenset(Scope)

MUTATION_SCOPES: dict[str, Scope] = {
    "createCampaign": Scope.WRITE,
    "updateCampaign": Scope.WRITE,
    "deleteCampaign": Scope.WRITE,
    "addRecipients": Scope.WRITE,
    "removeRecipients": Scope.WRITE,
    "duplicateCampaign": Scope.WRITE,
    "pauseCampaign": Scope.WRITE,
    "cancelCampaign": Scope.WRITE,
    "unscheduleCampaign": Scope.WRITE,
    "scheduleCampaign": Scope.SEND,
    "rescheduleCampaign": Scope.SEND,
    "scheduleCampaignInLocalTime": Scope.SEND,
    "rescheduleCampaignInLocalTime": Scope.SEND,
    "sendCampaignNow": Scope.SEND,
    "resumeCampaign": Scope.SEND,
    "retryFailedMessages": Scope.SEND,
    "retryCampaign": Scope.SEND,
    "sendTestMessage": Scope.SEND,
    "createApiKey": Scope.ADMIN,
    "revokeApiKey": Scope.ADMIN,
    "createWebhookEndpoint": Scope.ADMIN,
    "updateWebhookEndpoint": Scope.ADMIN,
    "rotateWebhookSecret": Scope.ADMIN,
    "deleteWebhookEndpoint": Scope.ADMIN,
    "sendTestWebhook": Scope.ADMIN,
    "addOptOuts": Scope.WRITE,
    "removeOptOut": Scope.WRITE,
    "setStopKeywords": Scope.ADMIN,
    "connectSender": Scope.ADMIN,
    "updateSender": Scope.ADMIN,
    "disconnectSender": Scope.ADMIN,
    "syncTemplates": Scope.WRITE,
    # a recurring schedule sends (create, resume) or stops sending (pause, end)
    "createRecurringSchedule": Scope.SEND,
    "resumeRecurringSchedule": Scope.SEND,
    "pauseRecurringSchedule": Scope.WRITE,
    "endRecurringSchedule": Scope.WRITE,
}


#: the queries that need more than `read`
QUERY_SCOPES: dict[str, Scope] = {
    "apiKeys": Scope.ADMIN,
    "webhookEndpoints": Scope.ADMIN,
}


def needed(operation: str, field_name: str) -> Scope:
    """The scope a root field needs: `operation` is "query", "mutation" or
    "subscription", `field_name` the GraphQL name."""
    if operation == "mutation":
        return MUTATION_SCOPES.get(field_name, Scope.ADMIN)
    return QUERY_SCOPES.get(field_name, Scope.READ)


class Forbidden(DomainError):
    """The key is valid but lacks the scope the operation needs."""

    code = ErrorCode.FORBIDDEN

    def __init__(self, operation: str, need: Scope, has: Iterable[Scope]) -> None:
        held = ", ".join(sorted(has)) or "none"
        super().__init__(f"This API key lacks the `{need}` scope that {operation} needs (it has: {held}).")
        self.need = need


def check(operation: str, need: Scope, has: frozenset[Scope]) -> None:
    """Raise Forbidden unless `has` holds `need`."""
    if need not in has:
        raise Forbidden(operation, need, has)


def parse_scopes(values: Iterable[str], field: str = "scopes") -> frozenset[Scope]:
    """Scopes as a client writes them (any case); ValidationFailed naming `field` for an
    unknown one or none at all."""
    found: set[Scope] = set()
    for index, value in enumerate(values):
        try:
            found.add(Scope(value.strip().lower()))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise ValidationFailed(f"Unknown scope {value!r}; scopes are {known}.", (field, str(index))) from None
    if not found:
        raise ValidationFailed("A key needs at least one scope.", (field,))
    return frozenset(found)


def stored(scopes: frozenset[Scope]) -> str:
    """The column's form: names in a fixed order, comma-separated."""
    return ",".join(s.value for s in Scope if s in scopes)


def loaded(text: str) -> frozenset[Scope]:
    return frozenset(Scope(part) for part in text.split(",") if part)
