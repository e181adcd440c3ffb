# Tokens expire, and "every environment" becomes an explicit choice instead of an empty list.
#
# Existing tokens expire API_TOKEN_DEFAULT_DAYS after the upgrade (not after their creation: an
# old token must not stop CI the minute the console is upgraded). A token whose environment list
# was empty meant every environment, so it gets all_environments; from now on an empty list with
# all_environments unset reaches nothing.

from django.db import migrations, models
from django.utils import timezone

import opsconsole.access.models


def every_environment_where_none_was_named(apps, schema_editor):
    ApiToken = apps.get_model("access", "ApiToken")
    tokens = ApiToken.objects.using(schema_editor.connection.alias)
    tokens.filter(environments=None).update(all_environments=True)


def revoke_tokens_that_would_widen(apps, schema_editor):
    """Going back, an empty list means every environment again: a live token that reached nothing
    would reach everything, so it is revoked instead."""
    ApiToken = apps.get_model("access", "ApiToken")
    tokens = ApiToken.objects.using(schema_editor.connection.alias)
    tokens.filter(all_environments=False, environments=None, revoked_at=None).update(revoked_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0002_environments_move_to_the_core"),
        ("environments", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="all_environments",
            field=models.BooleanField(
                default=False,
                help_text="Every environment, including ones added later; the list below is then empty.",
            ),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            # The callable is evaluated once for the existing rows: now + API_TOKEN_DEFAULT_DAYS.
            field=models.DateTimeField(default=opsconsole.access.models.default_expiry),
        ),
        migrations.AlterField(
            model_name="apitoken",
            name="environments",
            field=models.ManyToManyField(
                blank=True,
                help_text="The environments the token may act in. None and not all environments: it reaches nothing.",
                to="environments.environment",
            ),
        ),
        migrations.RunPython(every_environment_where_none_was_named, revoke_tokens_that_would_widen),
    ]
