from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_fencing_and_inbox')]

    initial = False

    operations = [
        ops.AddField(
            model_name='ApiKey',
            name='last_used_at',
            field=fields.DatetimeField(null=True, description='written at most once a minute per key and API process', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='ApiKey',
            name='scopes',
            field=fields.CharField(default='read,write,send,admin', description='domain/access.Scope names, comma-separated (keys made before scopes existed can do everything)', db_default='read,write,send,admin', max_length=64),
        ),
    ]
