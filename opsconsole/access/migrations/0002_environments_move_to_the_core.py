# The Environment (and FreezeWindow) moved from the deployments app to the core
# (opsconsole.environments), approvals to the runs app: only Django's model state changes,
# the tables keep their names and no row moves.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('access', '0001_initial'),
        ('environments', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='apitoken',
                    name='environments',
                    field=models.ManyToManyField(blank=True, help_text='Leave empty for every environment.', to='environments.environment'),
                ),
                migrations.AlterField(
                    model_name='rolebinding',
                    name='environment',
                    field=models.ForeignKey(blank=True, help_text='Leave empty to grant the role in every environment.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='role_bindings', to='environments.environment'),
                ),
            ],
        ),
    ]
