# The Environment (and FreezeWindow) moved from the deployments app to the core
# (opsconsole.environments), approvals to the runs app: only Django's model state changes,
# the tables keep their names and no row moves.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('environments', '0001_initial'),
        ('runs', '0003_run_dispatched_at'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='environmentlock',
                    name='environment',
                    field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='lock', to='environments.environment'),
                ),
                migrations.AlterField(
                    model_name='run',
                    name='environment',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='runs', to='environments.environment'),
                ),
                migrations.CreateModel(
                    name='Approval',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('decision', models.CharField(choices=[('approve', 'Approve'), ('reject', 'Reject')], max_length=10)),
                        ('comment', models.CharField(blank=True, max_length=500)),
                        ('at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='approvals', to='runs.run')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'deployments_approval',
                        'ordering': ['at'],
                        'constraints': [models.UniqueConstraint(fields=('run', 'user'), name='one_vote_per_user')],
                    },
                ),
            ],
        ),
    ]
