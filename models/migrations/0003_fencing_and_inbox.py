from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_send_round_and_test_messages')]

    initial = False

    operations = [
        ops.CreateModel(
            name='WebhookInbox',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('body', fields.TextField(unique=False)),
            ],
            options={'table': 'webhook_inbox', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Webhook bodies as received, signature checked, made durable before the 200 and'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Campaign',
            name='last_receipt_at',
            field=fields.DatetimeField(null=True, description='when a receipt last moved one of its messages: in-doubt messages are resent only', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Campaign',
            name='lease_fence',
            field=fields.IntField(default=0, description='bumped by every lease acquisition: claims and outcomes carry the fence they were', db_default=0),
        ),
        ops.AddField(
            model_name='Message',
            name='claim_fence',
            field=fields.IntField(null=True, description='the lease fence of the run that claimed it (moved it to SENDING)'),
        ),
        ops.AddField(
            model_name='Message',
            name='doubt_at',
            field=fields.DatetimeField(null=True, description='while SENDING: since when nobody knows whether the provider has it (a run died, or', auto_now=False, auto_now_add=False),
        ),
        # The sweep looks for messages in flight (a dead run's, or in doubt) across all
        # campaigns: a partial index holds only SENDING rows, so that scan stays small
        # however many messages the table has. Both PostgreSQL and SQLite support it.
        ops.RunSQL(
            "CREATE INDEX IF NOT EXISTS message_sending ON message (campaign_id) WHERE status = 'SENDING'",
            reverse_sql="DROP INDEX IF EXISTS message_sending",
        ),
    ]
