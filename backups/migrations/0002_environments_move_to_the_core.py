# The Environment (and FreezeWindow) moved from the deployments app to the core
# (opsconsole.environments), approvals to the runs app: only Django's model state changes,
# the tables keep their names and no row moves.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('backups', '0001_initial'),
        ('environments', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='backup',
                    name='environment',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='backups', to='environments.environment'),
                ),
                migrations.AlterField(
                    model_name='backuppolicy',
                    name='environment',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='backup_policies', to='environments.environment'),
                ),
            ],
        ),
    ]
