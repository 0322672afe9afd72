from tortoise import migrations
from tortoise.migrations import operations as ops
from domain.lifecycle import ScheduleStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import UniqueConstraint

class Migration(migrations.Migration):
    dependencies = [('models', '0010_daily_limit')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RecurringSchedule',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('workspace', fields.ForeignKeyField('models.Workspace', source_field='workspace_id', db_constraint=True, to_field='id', related_name='recurring_schedules', on_delete=OnDelete.CASCADE)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', description='the model: deleting it (refused while the schedule is live) deletes the schedule', db_constraint=True, to_field='id', related_name='recurring_schedules', on_delete=OnDelete.CASCADE)),
                ('cron', fields.CharField(description='five fields, normalised (domain/recurrence.parse_cron)', max_length=120)),
                ('time_zone', fields.CharField(description='the IANA zone the cron expression is read in', max_length=64)),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('max_runs', fields.IntField(null=True)),
                ('runs', fields.IntField(default=0, description='occurrences created so far')),
                ('status', fields.CharEnumField(default=ScheduleStatus.ACTIVE, description='ACTIVE: ACTIVE\nPAUSED: PAUSED\nENDED: ENDED', enum_type=ScheduleStatus, max_length=16)),
                ('next_run_at', fields.DatetimeField(null=True, description='the next slot, while ACTIVE (PAUSED: recomputed on RESUME), null once ENDED', auto_now=False, auto_now_add=False)),
                ('last_run_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_campaign', fields.ForeignKeyField('models.Campaign', source_field='last_campaign_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('last_error', fields.TextField(null=True, description='why the last occurrence could not be launched (it stays a DRAFT), null when it was', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('version', fields.IntField(default=1, description='bumped by every write: status changes and runs are conditional on it')),
            ],
            options={'table': 'recurring_schedule', 'app': 'models', 'indexes': [Index(fields=['status', 'next_run_at'], name='recurring_schedule_due'), Index(fields=['workspace_id', 'id'], name='recurring_schedule_ws_id')], 'pk_attr': 'id', 'table_description': 'A cron expression in a time zone on a model campaign (a DRAFT): each occurrence'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Campaign',
            name='occurrence_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Campaign',
            name='schedule',
            field=fields.ForeignKeyField('models.RecurringSchedule', source_field='schedule_id', null=True, description='the recurring schedule that made it (services/recurring.py), and the slot it stands for', db_constraint=True, to_field='id', related_name='occurrences', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddConstraint(
            model_name='Campaign',
            constraint=UniqueConstraint(fields=('schedule_id', 'occurrence_at'), name=None),
        ),
        # One live (ACTIVE or PAUSED) schedule per model campaign; ended ones stay for
        # the history of the occurrences they made.
        ops.RunSQL(
            "CREATE UNIQUE INDEX IF NOT EXISTS recurring_schedule_live_model ON recurring_schedule (campaign_id) "
            "WHERE status <> 'ENDED'",
            reverse_sql="DROP INDEX IF EXISTS recurring_schedule_live_model",
        ),
    ]
