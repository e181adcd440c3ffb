# The Environment (and FreezeWindow) moved from the deployments app to the core
# (opsconsole.environments), approvals to the runs app: only Django's model state changes,
# the tables keep their names and no row moves.

import django.core.validators
import django.db.models.deletion
import opsconsole.environments.models
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('deployments', '0003_environment_prometheus_verification'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Environment',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=63, unique=True, validators=[django.core.validators.RegexValidator('^[a-z0-9][a-z0-9-]*$', 'Use lowercase letters, digits and dashes.')])),
                        ('tier', models.CharField(choices=[('staging', 'Staging'), ('production', 'Production')], default='staging', max_length=20)),
                        ('description', models.CharField(blank=True, max_length=200)),
                        ('aws_region', models.CharField(default='us-east-1', max_length=30)),
                        ('role_arn', models.CharField(blank=True, help_text='Role the worker assumes; empty: its own.', max_length=200)),
                        ('ecs_cluster', models.CharField(blank=True, max_length=255)),
                        ('ecs_service', models.CharField(blank=True, max_length=255)),
                        ('task_family', models.CharField(blank=True, max_length=255)),
                        ('container_name', models.CharField(blank=True, max_length=255)),
                        ('strategy', models.CharField(choices=[('rolling', 'Rolling (ECS circuit breaker)'), ('blue_green', 'Blue/green (weighted target groups)')], default='rolling', max_length=20)),
                        ('migration_command', models.JSONField(blank=True, default=list, help_text='Run as a one-off task before the service update, e.g. ["python", "manage.py", "migrate"].', validators=[opsconsole.environments.models.validate_string_list])),
                        ('smoke_checks', models.JSONField(blank=True, default=list, help_text='[{"url": "https://api.example.com/health", "expected_status": 200, "body_contains": "ok"}]', validators=[opsconsole.environments.models.validate_smoke_checks])),
                        ('alarm_names', models.JSONField(blank=True, default=list, validators=[opsconsole.environments.models.validate_string_list])),
                        ('bake_seconds', models.PositiveIntegerField(default=300)),
                        ('prometheus_url', models.CharField(blank=True, help_text='e.g. http://prometheus:9090; empty: the PROMETHEUS_URL setting.', max_length=300)),
                        ('prometheus_query', models.TextField(blank=True, help_text='PromQL with one value per series, e.g. sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m])). Empty: no Prometheus verification.')),
                        ('prometheus_threshold', models.FloatField(blank=True, help_text='e.g. 0.05 for a 5% error ratio.', null=True)),
                        ('prometheus_comparison', models.CharField(choices=[('above', 'Roll back when the value is above the threshold'), ('below', 'Roll back when the value is below the threshold')], default='above', max_length=10)),
                        ('rollout_timeout_seconds', models.PositiveIntegerField(default=1800)),
                        ('migration_timeout_seconds', models.PositiveIntegerField(default=900)),
                        ('required_approvals', models.PositiveSmallIntegerField(default=0)),
                        ('approval_ttl_minutes', models.PositiveIntegerField(default=240)),
                        ('green_service', models.CharField(blank=True, max_length=255)),
                        ('listener_arn', models.CharField(blank=True, max_length=300)),
                        ('test_listener_arn', models.CharField(blank=True, max_length=300)),
                        ('blue_target_group_arn', models.CharField(blank=True, max_length=300)),
                        ('green_target_group_arn', models.CharField(blank=True, max_length=300)),
                        ('test_url', models.CharField(blank=True, help_text='Smoke-test URL of the test listener.', max_length=300)),
                        ('traffic_steps', models.JSONField(blank=True, default=list, help_text='e.g. [10, 100]')),
                        ('live_color', models.CharField(choices=[('blue', 'Blue'), ('green', 'Green')], default='blue', max_length=10)),
                        ('live_release', models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='deployments.release')),
                    ],
                    options={
                        'db_table': 'deployments_environment',
                        'ordering': ['tier', 'name'],
                    },
                ),
                migrations.CreateModel(
                    name='FreezeWindow',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('starts_at', models.DateTimeField()),
                        ('ends_at', models.DateTimeField()),
                        ('reason', models.CharField(max_length=200)),
                        ('environment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='freeze_windows', to='environments.environment')),
                    ],
                    options={
                        'db_table': 'deployments_freezewindow',
                        'ordering': ['starts_at'],
                    },
                ),
            ],
        ),
    ]
