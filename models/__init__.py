"""Tortoise models: the database holds the truth.

Invariants kept by every writer (see services/): a campaign's counters move in the
same transaction as the message rows they count, so at rest
  total = pending + sent + failed + cancelled, read <= delivered <= sent,
  replied <= total,
and each equals a GROUP BY over its messages (`replied`: those with `replied_at`), as
its billable counts (CampaignBillable) equal one over `billable_category`. Every status
change is a conditional UPDATE on (id, status) that bumps `version`, written with a
CampaignEvent row.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from domain.access import ALL_SCOPES, stored
from domain.lifecycle import CampaignStatus, ScheduleStatus
from domain.messages import Channel, MessageStatus
from domain.optouts import OptOutSource
from domain.webhooks import DeliveryStatus

ALL_SCOPES_TEXT = stored(ALL_SCOPES)


class Workspace(Model):
    """A tenant: every campaign, key and opt-out belongs to one."""

    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=200)
    #: JSON list of the inbound messages that opt a phone out (domain/optouts.py), null
    #: for the defaults
    stop_keywords = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "workspace"


class ApiKey(Model):
    """Stored as SHA-256 of the key: keys are 256-bit random, so no salt or slow hash is
    needed, and lookup is one indexed equality."""

    id = fields.BigIntField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="api_keys", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    prefix = fields.CharField(max_length=16)
    key_hash = fields.CharField(max_length=64, unique=True)
    #: domain/access.Scope names, comma-separated (keys made before scopes existed can do everything)
    scopes = fields.CharField(max_length=64, default=ALL_SCOPES_TEXT, db_default=ALL_SCOPES_TEXT)
    created_at = fields.DatetimeField(auto_now_add=True)
    #: written at most once a minute per key and API process
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    workspace_id: int

    class Meta:
        table = "api_key"


class Sender(Model):
    """A WhatsApp business phone number a workspace sends from. The access token is
    sealed (services/tokens.py): the database never holds it in clear. A phone number id
    is live in one workspace at most, so a status webhook naming it has one owner."""

    id = fields.BigIntField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="senders", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    waba_id = fields.CharField(max_length=32)
    #: unique among live senders (a partial index, migration 0007)
    phone_number_id = fields.CharField(max_length=32, db_index=True)
    display_phone_number = fields.CharField(max_length=32)
    verified_name = fields.CharField(max_length=200, null=True)
    access_token_sealed = fields.TextField()
    #: messages per second, shared by every worker sending from this number
    throughput = fields.IntField()
    #: domain/senders.Tier value, as Meta reported it when checked
    messaging_tier = fields.CharField(max_length=32, default="TIER_250")
    is_default = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    checked_at = fields.DatetimeField(null=True)
    #: kept for the history of the campaigns that sent from it, without its token
    disconnected_at = fields.DatetimeField(null=True)

    workspace_id: int

    class Meta:
        table = "sender"


class Template(Model):
    """A message template of a sender's WhatsApp Business Account, as the Cloud API last
    reported it (synced on connect, on demand, and by status webhooks)."""

    id = fields.BigIntField(primary_key=True)
    sender: fields.ForeignKeyRelation[Sender] = fields.ForeignKeyField(
        "models.Sender", related_name="templates", on_delete=fields.CASCADE, db_index=False
    )
    meta_id = fields.CharField(max_length=64)
    name = fields.CharField(max_length=512)
    language = fields.CharField(max_length=16)
    #: Meta's status: APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ...
    status = fields.CharField(max_length=32)
    category = fields.CharField(max_length=32)
    #: POSITIONAL ({{1}}) or NAMED ({{first_name}})
    parameter_format = fields.CharField(max_length=16)
    body = fields.TextField()
    #: the body's parameter names in order ("1", "2" or "first_name", ...)
    parameters: Any = fields.JSONField(default=list)
    synced_at = fields.DatetimeField()

    sender_id: int

    class Meta:
        table = "template"
        unique_together = (("sender_id", "name", "language"),)


class Campaign(Model):
    id = fields.BigIntField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="campaigns", on_delete=fields.CASCADE, db_index=False
    )
    name = fields.CharField(max_length=200)
    channel = fields.CharEnumField(Channel, max_length=16, default=Channel.WHATSAPP)
    body = fields.TextField()
    template_name = fields.CharField(max_length=512, null=True)
    template_language = fields.CharField(max_length=16, null=True)
    #: null: the deployment's bootstrap sender (WHATSAPP_* variables)
    sender: fields.ForeignKeyNullableRelation[Sender] = fields.ForeignKeyField(
        "models.Sender", related_name="campaigns", null=True, on_delete=fields.RESTRICT
    )
    status = fields.CharEnumField(CampaignStatus, max_length=16, default=CampaignStatus.DRAFT)
    status_reason = fields.TextField(null=True)
    #: bumped by every write that must not be lost to a race (status changes, edits)
    version = fields.IntField(default=1)
    scheduled_at = fields.DatetimeField(null=True)
    #: changes on SCHEDULE/RESCHEDULE/UNSCHEDULE/CANCEL, so a stale deferred job is a no-op
    schedule_token = fields.CharField(max_length=32, null=True)
    send_rate = fields.IntField(null=True)
    #: the zone of a recipient whose number tells none (and of a window without its own):
    #: an IANA name, null for UTC (domain/timezones.py)
    time_zone = fields.CharField(max_length=64, null=True)
    #: when messages may start, as JSON (domain/delivery.SendWindow): days, start, end, zone
    send_window = fields.TextField(null=True)
    #: send at this wall-clock date and time in each recipient's zone, as JSON
    #: (domain/delivery.LocalSend), null for one instant for everyone
    local_send = fields.TextField(null=True)
    failure_threshold = fields.FloatField(null=True)
    failure_sample_size = fields.IntField(default=100)
    total = fields.IntField(default=0)
    pending = fields.IntField(default=0)
    sent = fields.IntField(default=0)
    delivered = fields.IntField(default=0)
    read = fields.IntField(default=0)
    replied = fields.IntField(default=0, db_default=0)
    failed = fields.IntField(default=0)
    cancelled = fields.IntField(default=0)
    #: while everything it has left waits (domain/waiting.py): when the next message may
    #: go out; null otherwise
    next_send_at = fields.DatetimeField(null=True)
    #: the worker sending it now, and until when its claim holds
    lease_owner = fields.CharField(max_length=64, null=True)
    lease_expires_at = fields.DatetimeField(null=True)
    #: bumped by every lease acquisition: claims and outcomes carry the fence they were
    #: made under, so a run that lost its lease cannot touch what a newer one claimed
    lease_fence = fields.IntField(default=0, db_default=0)
    #: when a receipt last moved one of its messages: in-doubt messages are resent only
    #: once receipts are seen flowing after they went in doubt (domain.sending.InDoubtPolicy)
    last_receipt_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    started_at = fields.DatetimeField(null=True)
    completed_at = fields.DatetimeField(null=True)
    #: the recurring schedule that made it (services/recurring.py), and the slot it stands for
    schedule: fields.ForeignKeyNullableRelation[RecurringSchedule] = fields.ForeignKeyField(
        "models.RecurringSchedule", related_name="occurrences", null=True, on_delete=fields.SET_NULL, db_index=False
    )
    occurrence_at = fields.DatetimeField(null=True)

    sender_id: int | None
    workspace_id: int
    schedule_id: int | None

    class Meta:
        table = "campaign"
        # one campaign per slot of a schedule, however many workers or retried runs try
        unique_together = (("schedule_id", "occurrence_at"),)
        indexes = (
            # campaigns(...) newest first, optionally by status, per workspace
            Index(fields=("workspace_id", "id"), name="campaign_ws_id"),
            Index(fields=("workspace_id", "status", "id"), name="campaign_ws_status_id"),
            # the sweep: due schedules and expired leases
            Index(fields=("status", "scheduled_at"), name="campaign_status_sched"),
        )


class RecurringSchedule(Model):
    """A cron expression in a time zone on a model campaign (a DRAFT): each occurrence
    is a new campaign copied from it (domain/recurrence.py, services/recurring.py). Its
    status follows domain/lifecycle.SCHEDULE_TABLE, every change a conditional UPDATE on
    (id, status, version). One live (not ENDED) schedule per model: a partial unique
    index (migration 0011)."""

    id = fields.BigIntField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="recurring_schedules", on_delete=fields.CASCADE, db_index=False
    )
    #: the model: deleting it (refused while the schedule is live) deletes the schedule
    campaign: fields.ForeignKeyRelation[Campaign] = fields.ForeignKeyField(
        "models.Campaign", related_name="recurring_schedules", on_delete=fields.CASCADE
    )
    #: five fields, normalised (domain/recurrence.parse_cron)
    cron = fields.CharField(max_length=120)
    #: the IANA zone the cron expression is read in
    time_zone = fields.CharField(max_length=64)
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField(null=True)
    max_runs = fields.IntField(null=True)
    #: occurrences created so far
    runs = fields.IntField(default=0)
    status = fields.CharEnumField(ScheduleStatus, max_length=16, default=ScheduleStatus.ACTIVE)
    #: the next slot, while ACTIVE (PAUSED: recomputed on RESUME), null once ENDED
    next_run_at = fields.DatetimeField(null=True)
    last_run_at = fields.DatetimeField(null=True)
    last_campaign: fields.ForeignKeyNullableRelation[Campaign] = fields.ForeignKeyField(
        "models.Campaign", related_name=False, null=True, on_delete=fields.SET_NULL, db_index=False
    )
    #: why the last occurrence could not be launched (it stays a DRAFT), null when it was
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    #: bumped by every write: status changes and runs are conditional on it
    version = fields.IntField(default=1)

    workspace_id: int
    campaign_id: int
    last_campaign_id: int | None

    class Meta:
        table = "recurring_schedule"
        indexes = (
            # the sweep's due schedules
            Index(fields=("status", "next_run_at"), name="recurring_schedule_due"),
            # recurringSchedules, newest first, per workspace
            Index(fields=("workspace_id", "id"), name="recurring_schedule_ws_id"),
        )


class Message(Model):
    """One per recipient of a campaign."""

    id = fields.BigIntField(primary_key=True)
    campaign: fields.ForeignKeyRelation[Campaign] = fields.ForeignKeyField(
        "models.Campaign", related_name="messages", on_delete=fields.CASCADE, db_index=False
    )
    phone = fields.CharField(max_length=20)
    variables: Any = fields.JSONField(default=dict)
    status = fields.CharEnumField(MessageStatus, max_length=16, default=MessageStatus.PENDING)
    provider_message_id = fields.CharField(max_length=128, null=True, db_index=True)
    error_code = fields.CharField(max_length=32, null=True)
    error_message = fields.TextField(null=True)
    attempts = fields.IntField(default=0)
    #: bumped by RETRY_FAILED: a deliberate resend needs a new idempotency key, while a
    #: resend after a crash must reuse the old one
    send_round = fields.IntField(default=0, db_default=0)
    #: the lease fence of the run that claimed it (moved it to SENDING)
    claim_fence = fields.IntField(null=True)
    #: while SENDING: since when nobody knows whether the provider has it (a run died, or
    #: a call's answer was lost); reconciled by status webhooks or after a window
    doubt_at = fields.DatetimeField(null=True)
    sent_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)
    read_at = fields.DatetimeField(null=True)
    failed_at = fields.DatetimeField(null=True)
    #: the first inbound message from this phone after this message was sent to it
    replied_at = fields.DatetimeField(null=True)
    #: the pricing category of the first billable status webhook about it (counted once)
    billable_category = fields.CharField(max_length=32, null=True)
    #: PENDING but not to be claimed before this time (domain/waiting.py)
    not_before = fields.DatetimeField(null=True)
    #: times it was put to wait after WhatsApp's per-user marketing limit (131049)
    deferrals = fields.IntField(default=0, db_default=0)
    #: why it waits while `not_before` is ahead (domain/waiting.WaitReason), null otherwise
    wait_reason = fields.CharField(max_length=16, null=True)
    #: the recipient's IANA zone, from the `timezone` variable or the number
    #: (domain/timezones.py), null when neither tells: the campaign's zone applies
    time_zone = fields.CharField(max_length=64, null=True)

    campaign_id: int

    class Meta:
        table = "message"
        # a recipient appears once per campaign; the import relies on this
        unique_together = (("campaign_id", "phone"),)
        indexes = (
            # claiming pending messages in id order, and messages(status: ...) pages
            Index(fields=("campaign_id", "status", "id"), name="message_campaign_status_id"),
            Index(fields=("campaign_id", "id"), name="message_campaign_id"),
            # inbound messages: the latest message sent to a phone (its workspace, the
            # campaign a reply counts for)
            Index(fields=("phone", "sent_at"), name="message_phone_sent"),
        )


class CampaignEvent(Model):
    """The audit trail: one row per status change (and creation), oldest first."""

    id = fields.BigIntField(primary_key=True)
    campaign: fields.ForeignKeyRelation[Campaign] = fields.ForeignKeyField(
        "models.Campaign", related_name="events", on_delete=fields.CASCADE, db_index=False
    )
    from_status = fields.CharEnumField(CampaignStatus, max_length=16, null=True)
    to_status = fields.CharEnumField(CampaignStatus, max_length=16)
    action = fields.CharField(max_length=32)
    actor = fields.CharField(max_length=200)
    reason = fields.TextField(null=True)
    at = fields.DatetimeField(auto_now_add=True)

    campaign_id: int

    class Meta:
        table = "campaign_event"
        indexes = (Index(fields=("campaign_id", "id"), name="campaign_event_campaign_id"),)


class TestMessage(Model):
    """A message sent by sendTestMessage: outside the campaign's recipients and numbers."""

    id = fields.BigIntField(primary_key=True)
    campaign: fields.ForeignKeyRelation[Campaign] = fields.ForeignKeyField(
        "models.Campaign", related_name="test_messages", on_delete=fields.CASCADE
    )
    phone = fields.CharField(max_length=20)
    variables: Any = fields.JSONField(default=dict)
    status = fields.CharEnumField(MessageStatus, max_length=16, default=MessageStatus.SENDING)
    provider_message_id = fields.CharField(max_length=128, null=True)
    error_code = fields.CharField(max_length=32, null=True)
    error_message = fields.TextField(null=True)
    attempts = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)
    failed_at = fields.DatetimeField(null=True)

    campaign_id: int

    class Meta:
        table = "test_message"


class WebhookInbox(Model):
    """Webhook bodies as received, signature checked, made durable before the 200 and
    applied (then deleted) in bulk by services.inbox."""

    id = fields.BigIntField(primary_key=True)
    received_at = fields.DatetimeField()
    body = fields.TextField()

    class Meta:
        table = "webhook_inbox"


class OptOut(Model):
    """A phone that asked not to be messaged by this workspace: since when, learned how."""

    id = fields.BigIntField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="opt_outs", on_delete=fields.CASCADE, db_index=False
    )
    phone = fields.CharField(max_length=20)
    source = fields.CharEnumField(
        OptOutSource, max_length=24, default=OptOutSource.MANUAL, db_default=OptOutSource.MANUAL.value
    )
    #: the keyword, the error's title, the webhook's detail, who added it
    detail = fields.TextField(null=True)
    # when the person opted out (the webhook's time where it says), else when learned
    created_at = fields.DatetimeField(auto_now_add=True)

    workspace_id: int

    class Meta:
        table = "opt_out"
        unique_together = (("workspace_id", "phone"),)
        # optOuts(...) newest first, per workspace
        indexes = (Index(fields=("workspace_id", "id"), name="opt_out_ws_id"),)


class CampaignBillable(Model):
    """How many of a campaign's messages were billable, per pricing category: each
    message counted once, the first time a billable status webhook names it. Moves with
    `message.billable_category` in the receipts' transaction."""

    id = fields.BigIntField(primary_key=True)
    campaign: fields.ForeignKeyRelation[Campaign] = fields.ForeignKeyField(
        "models.Campaign", related_name="billable", on_delete=fields.CASCADE, db_index=False
    )
    category = fields.CharField(max_length=32)
    count = fields.IntField(default=0)

    campaign_id: int

    class Meta:
        table = "campaign_billable"
        unique_together = (("campaign_id", "category"),)


class WebhookEndpoint(Model):
    """Where a workspace wants its events POSTed. The secret is kept as given out: it
    is the HMAC key of every delivery, so it cannot be a one-way hash."""

    id = fields.BigIntField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="webhook_endpoints", on_delete=fields.CASCADE
    )
    url = fields.CharField(max_length=2048)
    #: domain/webhooks.EventType values, comma-separated
    events = fields.CharField(max_length=255)
    enabled = fields.BooleanField(default=True)
    secret = fields.CharField(max_length=128)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    workspace_id: int

    class Meta:
        table = "webhook_endpoint"


class WebhookDelivery(Model):
    """One event for one endpoint: the outbox row, written in the transaction of the
    change it tells, then POSTed (and retried) by jobs/webhooks.py. Invariant: among
    one endpoint's deliveries of one campaign, only the oldest PENDING one is ever
    attempted, so a receiver gets a campaign's events in order."""

    id = fields.BigIntField(primary_key=True)
    endpoint: fields.ForeignKeyRelation[WebhookEndpoint] = fields.ForeignKeyField(
        "models.WebhookEndpoint", related_name="deliveries", on_delete=fields.CASCADE, db_index=False
    )
    event_id = fields.CharField(max_length=40, db_index=True)
    event_type = fields.CharField(max_length=64)
    #: no foreign key: a campaign deleted later keeps its events' deliveries
    campaign_id = fields.BigIntField(null=True)
    #: the exact bytes POSTed (and signed) at every attempt
    body = fields.TextField()
    status = fields.CharEnumField(DeliveryStatus, max_length=16, default=DeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    #: an attempt in flight holds the row until then (a dispatcher that dies frees it so)
    locked_until = fields.DatetimeField(null=True)
    last_attempt_at = fields.DatetimeField(null=True)
    last_status_code = fields.IntField(null=True)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    delivered_at = fields.DatetimeField(null=True)

    endpoint_id: int

    class Meta:
        table = "webhook_delivery"
        indexes = (
            # the dispatcher's scan of due deliveries
            Index(fields=("status", "next_attempt_at"), name="webhook_delivery_due"),
            # the order check (an older pending delivery of the same campaign) and the log
            Index(fields=("endpoint_id", "campaign_id", "id"), name="webhook_delivery_endpoint_campaign"),
        )


class DailyContact(Model):
    """A recipient a sender messaged, for its messaging limit (services/daily_limit.py):
    one row per sender and phone, `opened_at` its latest claim. Rows noted within the
    last 24 hours (and a margin: domain/senders.py) count; older ones are pruned by
    the claims that note new ones."""

    id = fields.BigIntField(primary_key=True)
    #: the sender's phone number id: also names the bootstrap sender, which has no row
    sender_key = fields.CharField(max_length=32)
    phone = fields.CharField(max_length=20)
    #: business time (runtime/clock.py) of the latest claim of a message to this phone
    opened_at = fields.DatetimeField()

    class Meta:
        table = "daily_contact"
        unique_together = (("sender_key", "phone"),)
        # counting a sender's recipients in the window, finding its oldest, pruning
        indexes = (Index(fields=("sender_key", "opened_at"), name="daily_contact_sender_opened"),)


__all__ = [
    "ApiKey",
    "Campaign",
    "CampaignBillable",
    "CampaignEvent",
    "DailyContact",
    "Message",
    "OptOut",
    "RecurringSchedule",
    "Sender",
    "Template",
    "TestMessage",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookInbox",
    "Workspace",
]
