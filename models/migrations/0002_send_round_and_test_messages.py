from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from domain.messages import MessageStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='TestMessage',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name='test_messages', on_delete=OnDelete.CASCADE)),
                ('phone', fields.CharField(max_length=20)),
                ('variables', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharEnumField(default=MessageStatus.SENDING, description='PENDING: PENDING\nSENDING: SENDING\nSENT: SENT\nDELIVERED: DELIVERED\nREAD: READ\nFAILED: FAILED\nCANCELLED: CANCELLED', enum_type=MessageStatus, max_length=16)),
                ('provider_message_id', fields.CharField(null=True, max_length=128)),
                ('error_code', fields.CharField(null=True, max_length=32)),
                ('error_message', fields.TextField(null=True, unique=False)),
                ('attempts', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('failed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'test_message', 'app': 'models', 'pk_attr': 'id', 'table_description': "A message sent by sendTestMessage: outside the campaign's recipients and numbers."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Message',
            name='send_round',
            field=fields.IntField(default=0, description='bumped by RETRY_FAILED: a deliberate resend needs a new idempotency key, while a', db_default=0),
        ),
    ]
