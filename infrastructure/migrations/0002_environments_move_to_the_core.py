# The Environment (and FreezeWindow) moved from the deployments app to the core
# (opsconsole.environments), approvals to the runs app: only Django's model state changes,
# the tables keep their names and no row moves.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('environments', '0001_initial'),
        ('infrastructure', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='workspace',
                    name='environment',
                    field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='terraform_workspace', to='environments.environment'),
                ),
            ],
        ),
    ]
