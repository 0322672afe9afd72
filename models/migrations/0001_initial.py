from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from domain.lifecycle import CampaignStatus
from domain.messages import Channel, MessageStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Workspace',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'workspace', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A tenant: every campaign, key and opt-out belongs to one.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ApiKey',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('workspace', fields.ForeignKeyField('models.Workspace', source_field='workspace_id', db_constraint=True, to_field='id', related_name='api_keys', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=200)),
                ('prefix', fields.CharField(max_length=16)),
                ('key_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'api_key', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Stored as SHA-256 of the key: keys are 256-bit random, so no salt or slow hash is'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Campaign',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('workspace', fields.ForeignKeyField('models.Workspace', source_field='workspace_id', db_constraint=True, to_field='id', related_name='campaigns', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=200)),
                ('channel', fields.CharEnumField(default=Channel.WHATSAPP, description='WHATSAPP: WHATSAPP', enum_type=Channel, max_length=16)),
                ('body', fields.TextField(unique=False)),
                ('template_name', fields.CharField(null=True, max_length=512)),
                ('template_language', fields.CharField(null=True, max_length=16)),
                ('status', fields.CharEnumField(default=CampaignStatus.DRAFT, description='DRAFT: DRAFT\nSCHEDULED: SCHEDULED\nQUEUED: QUEUED\nPROCESSING: PROCESSING\nPAUSED: PAUSED\nCOMPLETED: COMPLETED\nCANCELLED: CANCELLED\nFAILED: FAILED', enum_type=CampaignStatus, max_length=16)),
                ('status_reason', fields.TextField(null=True, unique=False)),
                ('version', fields.IntField(default=1, description='bumped by every write that must not be lost to a race (status changes, edits)')),
                ('scheduled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('schedule_token', fields.CharField(null=True, description='changes on SCHEDULE/RESCHEDULE/UNSCHEDULE/CANCEL, so a stale deferred job is a no-op', max_length=32)),
                ('send_rate', fields.IntField(null=True)),
                ('failure_threshold', fields.FloatField(null=True)),
                ('failure_sample_size', fields.IntField(default=100)),
                ('total', fields.IntField(default=0)),
                ('pending', fields.IntField(default=0)),
                ('sent', fields.IntField(default=0)),
                ('delivered', fields.IntField(default=0)),
                ('read', fields.IntField(default=0)),
                ('failed', fields.IntField(default=0)),
                ('cancelled', fields.IntField(default=0)),
                ('lease_owner', fields.CharField(null=True, description='the worker sending it now, and until when its claim holds', max_length=64)),
                ('lease_expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'campaign', 'app': 'models', 'indexes': [Index(fields=['workspace_id', 'id'], name='campaign_ws_id'), Index(fields=['workspace_id', 'status', 'id'], name='campaign_ws_status_id'), Index(fields=['status', 'scheduled_at'], name='campaign_status_sched')], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CampaignEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.CASCADE)),
                ('from_status', fields.CharEnumField(null=True, description='DRAFT: DRAFT\nSCHEDULED: SCHEDULED\nQUEUED: QUEUED\nPROCESSING: PROCESSING\nPAUSED: PAUSED\nCOMPLETED: COMPLETED\nCANCELLED: CANCELLED\nFAILED: FAILED', enum_type=CampaignStatus, max_length=16)),
                ('to_status', fields.CharEnumField(description='DRAFT: DRAFT\nSCHEDULED: SCHEDULED\nQUEUED: QUEUED\nPROCESSING: PROCESSING\nPAUSED: PAUSED\nCOMPLETED: COMPLETED\nCANCELLED: CANCELLED\nFAILED: FAILED', enum_type=CampaignStatus, max_length=16)),
                ('action', fields.CharField(max_length=32)),
                ('actor', fields.CharField(max_length=200)),
                ('reason', fields.TextField(null=True, unique=False)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'campaign_event', 'app': 'models', 'indexes': [Index(fields=['campaign_id', 'id'], name='campaign_event_campaign_id')], 'pk_attr': 'id', 'table_description': 'The audit trail: one row per status change (and creation), oldest first.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Message',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.CASCADE)),
                ('phone', fields.CharField(max_length=20)),
                ('variables', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharEnumField(default=MessageStatus.PENDING, description='PENDING: PENDING\nSENDING: SENDING\nSENT: SENT\nDELIVERED: DELIVERED\nREAD: READ\nFAILED: FAILED\nCANCELLED: CANCELLED', enum_type=MessageStatus, max_length=16)),
                ('provider_message_id', fields.CharField(null=True, db_index=True, max_length=128)),
                ('error_code', fields.CharField(null=True, max_length=32)),
                ('error_message', fields.TextField(null=True, unique=False)),
                ('attempts', fields.IntField(default=0)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('read_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('failed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'message', 'app': 'models', 'unique_together': (('campaign_id', 'phone'),), 'indexes': [Index(fields=['campaign_id', 'status', 'id'], name='message_campaign_status_id'), Index(fields=['campaign_id', 'id'], name='message_campaign_id')], 'pk_attr': 'id', 'table_description': 'One per recipient of a campaign.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OptOut',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('workspace', fields.ForeignKeyField('models.Workspace', source_field='workspace_id', db_constraint=True, to_field='id', related_name='opt_outs', on_delete=OnDelete.CASCADE)),
                ('phone', fields.CharField(max_length=20)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'opt_out', 'app': 'models', 'unique_together': (('workspace_id', 'phone'),), 'pk_attr': 'id', 'table_description': 'A phone that asked not to be messaged by this workspace.'},
            bases=['Model'],
        ),
    ]
