from tortoise import migrations
from tortoise.migrations import operations as ops
from domain.optouts import OptOutSource
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0005_webhooks')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CampaignBillable',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name='billable', on_delete=OnDelete.CASCADE)),
                ('category', fields.CharField(max_length=32)),
                ('count', fields.IntField(default=0)),
            ],
            options={'table': 'campaign_billable', 'app': 'models', 'unique_together': (('campaign_id', 'category'),), 'pk_attr': 'id', 'table_description': "How many of a campaign's messages were billable, per pricing category: each"},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Campaign',
            name='next_send_at',
            field=fields.DatetimeField(null=True, description='while everything it has left waits (domain/waiting.py): when the next message may', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Campaign',
            name='replied',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='Message',
            name='billable_category',
            field=fields.CharField(null=True, description='the pricing category of the first billable status webhook about it (counted once)', max_length=32),
        ),
        ops.AddField(
            model_name='Message',
            name='deferrals',
            field=fields.IntField(default=0, description="times it was put to wait after WhatsApp's per-user marketing limit (131049)", db_default=0),
        ),
        ops.AddField(
            model_name='Message',
            name='not_before',
            field=fields.DatetimeField(null=True, description='PENDING but not to be claimed before this time (domain/waiting.py)', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Message',
            name='replied_at',
            field=fields.DatetimeField(null=True, description='the first inbound message from this phone after this message was sent to it', auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='Message',
            index=Index(fields=['phone', 'sent_at'], name='message_phone_sent'),
        ),
        # A campaign's waiting messages (not_before set): its next send time. A partial
        # index holds only those rows, so the earliest is one index probe however many
        # messages the campaign has. Both PostgreSQL and SQLite support it.
        ops.RunSQL(
            "CREATE INDEX IF NOT EXISTS message_waiting ON message (campaign_id, not_before) "
            "WHERE not_before IS NOT NULL",
            reverse_sql="DROP INDEX IF EXISTS message_waiting",
        ),
        ops.AlterModelOptions(
            name='OptOut',
            options={'table': 'opt_out', 'app': 'models', 'unique_together': (('workspace_id', 'phone'),), 'indexes': [Index(fields=['workspace_id', 'id'], name='opt_out_ws_id')], 'pk_attr': 'id', 'table_description': 'A phone that asked not to be messaged by this workspace: since when, learned how.'},
        ),
        ops.AddField(
            model_name='OptOut',
            name='detail',
            field=fields.TextField(null=True, description="the keyword, the error's title, the webhook's detail, who added it", unique=False),
        ),
        ops.AddField(
            model_name='OptOut',
            name='source',
            field=fields.CharEnumField(default=OptOutSource.MANUAL, description='MANUAL: MANUAL\nERROR_131050: ERROR_131050\nUSER_PREFERENCES: USER_PREFERENCES\nKEYWORD: KEYWORD', db_default='MANUAL', enum_type=OptOutSource, max_length=24),
        ),
        ops.AddIndex(
            model_name='OptOut',
            index=Index(fields=['workspace_id', 'id'], name='opt_out_ws_id'),
        ),
        ops.AddField(
            model_name='Workspace',
            name='stop_keywords',
            field=fields.TextField(null=True, description='JSON list of the inbound messages that opt a phone out (domain/optouts.py), null', unique=False),
        ),
    ]
