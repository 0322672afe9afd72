from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_senders')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Template',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('sender', fields.ForeignKeyField('models.Sender', source_field='sender_id', db_constraint=True, to_field='id', related_name='templates', on_delete=OnDelete.CASCADE)),
                ('meta_id', fields.CharField(max_length=64)),
                ('name', fields.CharField(max_length=512)),
                ('language', fields.CharField(max_length=16)),
                ('status', fields.CharField(description="Meta's status: APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ...", max_length=32)),
                ('category', fields.CharField(max_length=32)),
                ('parameter_format', fields.CharField(description='POSITIONAL ({{1}}) or NAMED ({{first_name}})', max_length=16)),
                ('body', fields.TextField(unique=False)),
                ('parameters', fields.JSONField(default=list, description='the body\'s parameter names in order ("1", "2" or "first_name", ...)', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('synced_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'template', 'app': 'models', 'unique_together': (('sender_id', 'name', 'language'),), 'pk_attr': 'id', 'table_description': "A message template of a sender's WhatsApp Business Account, as the Cloud API last"},
            bases=['Model'],
        ),
    ]
