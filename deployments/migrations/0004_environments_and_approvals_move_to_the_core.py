# The Environment (and FreezeWindow) moved from the deployments app to the core
# (opsconsole.environments), approvals to the runs app: only Django's model state changes,
# the tables keep their names and no row moves.

import django.db.models.deletion
from django.db import migrations, models

MOVED = [("environment", "environments"), ("freezewindow", "environments"), ("approval", "runs")]


def move_content_types(apps, schema_editor, old="deployments", forward=True):
    """Keep the content types (admin history, permissions) with the models they name. If the new
    app's row exists already (a post_migrate ran in between), what named the old row moves to it:
    its permissions (and who holds them) and the admin's history; then the old row goes."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    LogEntry = apps.get_model("admin", "LogEntry")
    db = schema_editor.connection.alias
    for model, new in MOVED:
        source, target = (old, new) if forward else (new, old)
        stale = ContentType.objects.using(db).filter(app_label=source, model=model).first()
        if stale is None:
            continue
        current = ContentType.objects.using(db).filter(app_label=target, model=model).first()
        if current is None:
            stale.app_label = target
            stale.save(update_fields=["app_label"])
            continue
        for permission in Permission.objects.using(db).filter(content_type=stale):
            twin = Permission.objects.using(db).filter(content_type=current, codename=permission.codename).first()
            if twin is None:
                permission.content_type = current
                permission.save(update_fields=["content_type"])
            else:
                twin.user_set.add(*permission.user_set.all())
                twin.group_set.add(*permission.group_set.all())
                permission.delete()
        LogEntry.objects.using(db).filter(content_type=stale).update(content_type=current)
        stale.delete()


def move_content_types_back(apps, schema_editor):
    move_content_types(apps, schema_editor, forward=False)


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('admin', '0003_logentry_add_action_flag_choices'),
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
