# The Environment (and FreezeWindow) moved from the deployments app to the core
# (opsconsole.environments), approvals to the runs app: only Django's model state changes,
# the tables keep their names and no row moves.

import django.db.models.deletion
from django.db import migrations, models

MOVED = [("environment", "environments"), ("freezewindow", "environments"), ("approval", "runs")]


def move_content_types(apps, schema_editor, old="deployments", forward=True):
    """Keep the content types (admin history, permissions) with the models they name."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model, new in MOVED:
        source, target = (old, new) if forward else (new, old)
        if not ContentType.objects.using(db).filter(app_label=target, model=model).exists():
            ContentType.objects.using(db).filter(app_label=source, model=model).update(app_label=target)


def move_content_types_back(apps, schema_editor):
    move_content_types(apps, schema_editor, forward=False)


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('access', '0002_environments_move_to_the_core'),
        ('backups', '0002_environments_move_to_the_core'),
        ('deployments', '0003_environment_prometheus_verification'),
        ('dr', '0004_environments_move_to_the_core'),
        ('environments', '0001_initial'),
        ('infrastructure', '0002_environments_move_to_the_core'),
        ('notifications', '0002_environments_move_to_the_core'),
        ('runs', '0004_environments_and_approvals_move_to_the_core'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='deployment',
                    name='environment',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deployments', to='environments.environment'),
                ),
                migrations.RemoveField(
                    model_name='freezewindow',
                    name='environment',
                ),
                migrations.DeleteModel(
                    name='Approval',
                ),
                migrations.DeleteModel(
                    name='Environment',
                ),
                migrations.DeleteModel(
                    name='FreezeWindow',
                ),
            ],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
