from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_opt_outs')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Sender',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('workspace', fields.ForeignKeyField('models.Workspace', source_field='workspace_id', db_constraint=True, to_field='id', related_name='senders', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=200)),
                ('waba_id', fields.CharField(max_length=32)),
                ('phone_number_id', fields.CharField(db_index=True, description='unique among live senders (a partial index, migration 0007)', max_length=32)),
                ('display_phone_number', fields.CharField(max_length=32)),
                ('verified_name', fields.CharField(null=True, max_length=200)),
                ('access_token_sealed', fields.TextField(unique=False)),
                ('throughput', fields.IntField(description='messages per second, shared by every worker sending from this number')),
                ('messaging_tier', fields.CharField(default='TIER_250', description='domain/senders.Tier value, as Meta reported it when checked', max_length=32)),
                ('is_default', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('checked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('disconnected_at', fields.DatetimeField(null=True, description='kept for the history of the campaigns that sent from it, without its token', auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'sender', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A WhatsApp business phone number a workspace sends from. The access token is'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Campaign',
            name='sender',
            field=fields.ForeignKeyField('models.Sender', source_field='sender_id', null=True, description="null: the deployment's bootstrap sender (WHATSAPP_* variables)", db_constraint=True, to_field='id', related_name='campaigns', on_delete=OnDelete.RESTRICT),
        ),
        # One live sender per phone number (status webhooks are routed by it); a
        # disconnected one keeps its row for the history of its campaigns.
        ops.RunSQL(
            "CREATE UNIQUE INDEX IF NOT EXISTS sender_live_number ON sender (phone_number_id) "
            "WHERE disconnected_at IS NULL",
            reverse_sql="DROP INDEX IF EXISTS sender_live_number",
        ),
    ]
