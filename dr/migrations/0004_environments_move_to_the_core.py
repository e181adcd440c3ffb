# The Environment (and FreezeWindow) moved from the deployments app to the core
# (opsconsole.environments), approvals to the runs app: only Django's model state changes,
# the tables keep their names and no row moves.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('dr', '0003_terraform_workspace_name'),
        ('environments', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='drplan',
                    name='environment',
                    field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='dr_plan', to='environments.environment'),
                ),
            ],
        ),
    ]
