from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0009_delivery')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DailyContact',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('sender_key', fields.CharField(description="the sender's phone number id: also names the bootstrap sender, which has no row", max_length=32)),
                ('phone', fields.CharField(max_length=20)),
                ('opened_at', fields.DatetimeField(description='business time (runtime/clock.py) of the latest claim of a message to this phone', auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'daily_contact', 'app': 'models', 'unique_together': (('sender_key', 'phone'),), 'indexes': [Index(fields=['sender_key', 'opened_at'], name='daily_contact_sender_opened')], 'pk_attr': 'id', 'table_description': 'A recipient a sender messaged, for its messaging limit (services/daily_limit.py):'},
            bases=['Model'],
        ),
    ]
