# A channel's kind is one of the registered channel kinds (notifications/channels/): the choices
# are read from the registry, so a new kind needs no migration. Model state only: no SQL.

from django.db import migrations, models

import notifications.channels


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0002_environments_move_to_the_core'),
    ]

    operations = [
        migrations.AlterField(
            model_name='channel',
            name='kind',
            field=models.CharField(choices=notifications.channels.choices, max_length=20),
        ),
        migrations.AlterField(
            model_name='delivery',
            name='channel_kind',
            field=models.CharField(choices=notifications.channels.choices, max_length=20),
        ),
    ]
