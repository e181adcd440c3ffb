# A run records what makes its request the same as another (its kind's identity), and at most one
# active run per environment, kind and identity exists.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('environments', '0001_initial'),
        ('runs', '0004_environments_and_approvals_move_to_the_core'),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='identity',
            field=models.CharField(blank=True, help_text="What makes two requests of this kind the same (the kind's identity(params)); '' for none.", max_length=200),
        ),
        migrations.AddConstraint(
            model_name='run',
            constraint=models.UniqueConstraint(condition=models.Q(('status__in', ['awaiting_approval', 'queued', 'rolling_back', 'running']), models.Q(('identity', ''), _negated=True)), fields=('environment', 'kind', 'identity'), name='one_active_run_per_identity'),
        ),
    ]
