from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0008_templates')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Campaign',
            name='local_send',
            field=fields.TextField(null=True, description="send at this wall-clock date and time in each recipient's zone, as JSON", unique=False),
        ),
        ops.AddField(
            model_name='Campaign',
            name='send_window',
            field=fields.TextField(null=True, description='when messages may start, as JSON (domain/delivery.SendWindow): days, start, end, zone', unique=False),
        ),
        ops.AddField(
            model_name='Campaign',
            name='time_zone',
            field=fields.CharField(null=True, description='the zone of a recipient whose number tells none (and of a window without its own):', max_length=64),
        ),
        ops.AddField(
            model_name='Message',
            name='time_zone',
            field=fields.CharField(null=True, description="the recipient's IANA zone, from the `timezone` variable or the number", max_length=64),
        ),
        ops.AddField(
            model_name='Message',
            name='wait_reason',
            field=fields.CharField(null=True, description='why it waits while `not_before` is ahead (domain/waiting.WaitReason), null otherwise', max_length=16),
        ),
    ]
