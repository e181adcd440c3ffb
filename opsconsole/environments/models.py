"""Environments: where the console deploys, backs up and fails over, with their freeze windows.

The core owns the Environment because every app works per environment (runs, locks, roles,
backups, DR plans, Terraform workspaces). Its deploy settings (ECS service, strategy, bake,
blue/green) are read by the deployments app; they stay on this row until an environment holds
several services. The tables keep the names they had in the deployments app.
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone


class Tier(models.TextChoices):
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"


class Strategy(models.TextChoices):
    ROLLING = "rolling", "Rolling (ECS circuit breaker)"
    BLUE_GREEN = "blue_green", "Blue/green (weighted target groups)"


class Comparison(models.TextChoices):
    ABOVE = "above", "Roll back when the value is above the threshold"
    BELOW = "below", "Roll back when the value is below the threshold"


class InsufficientData(models.TextChoices):
    """What an alarm in INSUFFICIENT_DATA at the end of the bake means for the deploy."""

    FAIL = "fail", "Fail: the deploy could not be verified, roll it back"
    PASS = "pass", "Pass: count an alarm without data as OK"


class Color(models.TextChoices):
    BLUE = "blue", "Blue"
    GREEN = "green", "Green"


def validate_http_url(value: str) -> None:
    """An http or https URL with a host: what the console fetches (smoke tests, Prometheus) and
    links to. Internal names without a dot (http://prometheus:9090) are fine, unlike URLField;
    file:, gopher: and the like are not, nor are spaces or control characters."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError:
        raise ValidationError(f"{value!r} is not a URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Use an http:// or https:// URL with a host name.")
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValidationError("A URL cannot contain spaces or control characters.")


def validate_smoke_checks(value) -> None:
    if not isinstance(value, list):
        raise ValidationError("Smoke checks must be a list of {url, expected_status, body_contains}.")
    for check in value:
        if not isinstance(check, dict) or not isinstance(check.get("url"), str):
            raise ValidationError("Each smoke check needs an http(s) url.")
        validate_http_url(check["url"])
        status = check.get("expected_status", 200)
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValidationError("expected_status must be an HTTP status code.")


def validate_string_list(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValidationError("Expected a list of non-empty strings.")


def validate_traffic_steps(value) -> None:
    if not isinstance(value, list) or not value or not all(isinstance(s, int) and 0 < s <= 100 for s in value):
        raise ValidationError("Traffic steps are percentages such as [10, 50, 100].")
    if value != sorted(value) or value[-1] != 100:
        raise ValidationError("Traffic steps must increase and end at 100.")


class Environment(models.Model):
    name = models.CharField(
        max_length=63,
        unique=True,
        validators=[RegexValidator(r"^[a-z0-9][a-z0-9-]*$", "Use lowercase letters, digits and dashes.")],
    )
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.STAGING)
    description = models.CharField(max_length=200, blank=True)

    # Where it runs.
    aws_region = models.CharField(max_length=30, default="us-east-1")
    role_arn = models.CharField(max_length=200, blank=True, help_text="Role the worker assumes; empty: its own.")
    ecs_cluster = models.CharField(max_length=255, blank=True)
    ecs_service = models.CharField(max_length=255, blank=True)
    task_family = models.CharField(max_length=255, blank=True)
    container_name = models.CharField(max_length=255, blank=True)

    # How a deploy proceeds.
    strategy = models.CharField(max_length=20, choices=Strategy.choices, default=Strategy.ROLLING)
    migration_command = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_string_list],
        help_text='Run as a one-off task before the service update, e.g. ["python", "manage.py", "migrate"].',
    )
    smoke_checks = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_smoke_checks],
        help_text='[{"url": "https://api.example.com/health", "expected_status": 200, "body_contains": "ok"}]',
    )
    alarm_names = models.JSONField(default=list, blank=True, validators=[validate_string_list])
    bake_seconds = models.PositiveIntegerField(default=300)
    insufficient_data = models.CharField(
        "Alarms without data",
        max_length=10,
        choices=InsufficientData.choices,
        default=InsufficientData.FAIL,
        help_text="An alarm in INSUFFICIENT_DATA at the end of the bake. Pass suits an environment whose alarms "
        "often have no data (little traffic); an alarm in ALARM always fails.",
    )
    # Verification by Prometheus: evaluated with the alarms during the bake (docs/deployments.md).
    prometheus_url = models.CharField(
        max_length=300,
        blank=True,
        validators=[validate_http_url],
        help_text="e.g. http://prometheus:9090; empty: the PROMETHEUS_URL setting.",
    )
    prometheus_query = models.TextField(
        blank=True,
        help_text='PromQL with one value per series, e.g. sum(rate(http_requests_total{status=~"5.."}[5m])) '
        "/ sum(rate(http_requests_total[5m])). Empty: no Prometheus verification.",
    )
    prometheus_threshold = models.FloatField(null=True, blank=True, help_text="e.g. 0.05 for a 5% error ratio.")
    prometheus_comparison = models.CharField(max_length=10, choices=Comparison.choices, default=Comparison.ABOVE)
    rollout_timeout_seconds = models.PositiveIntegerField(default=1800)
    migration_timeout_seconds = models.PositiveIntegerField(default=900)

    # Protection.
    required_approvals = models.PositiveSmallIntegerField(default=0)
    approval_ttl_minutes = models.PositiveIntegerField(default=240)

    # Blue/green: a second service and a weighted listener.
    green_service = models.CharField(max_length=255, blank=True)
    listener_arn = models.CharField(max_length=300, blank=True)
    test_listener_arn = models.CharField(max_length=300, blank=True)
    blue_target_group_arn = models.CharField(max_length=300, blank=True)
    green_target_group_arn = models.CharField(max_length=300, blank=True)
    test_url = models.CharField(
        max_length=300, blank=True, validators=[validate_http_url], help_text="Smoke-test URL of the test listener."
    )
    traffic_steps = models.JSONField(default=list, blank=True, help_text="e.g. [10, 100]")
    live_color = models.CharField(max_length=10, choices=Color.choices, default=Color.BLUE)

    live_release = models.ForeignKey(
        "deployments.Release", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        db_table = "deployments_environment"
        ordering = ["tier", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.clean_prometheus()
        if self.strategy == Strategy.BLUE_GREEN:
            missing = [
                name
                for name in ("green_service", "listener_arn", "blue_target_group_arn", "green_target_group_arn")
                if not getattr(self, name)
            ]
            if missing:
                raise ValidationError(f"Blue/green needs {', '.join(missing)}.")
            validate_traffic_steps(self.traffic_steps)

    def clean_prometheus(self) -> None:
        """The shape of the Prometheus check (the admin form also asks the server's parser)."""
        errors = {}
        self.prometheus_url = self.prometheus_url.strip()
        self.prometheus_query = self.prometheus_query.strip()
        if self.prometheus_url:
            parsed = urlsplit(self.prometheus_url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                errors["prometheus_url"] = "Give the Prometheus server's http(s) URL, e.g. http://prometheus:9090."
            elif parsed.username or parsed.password:
                errors["prometheus_url"] = "Put no credentials in the URL: they would be copied into every run."
        if self.prometheus_query:
            if self.prometheus_threshold is None:
                errors["prometheus_threshold"] = "Give the threshold at which a deploy is rolled back."
            if not self.prometheus_url and not settings.PROMETHEUS_URL:
                errors["prometheus_url"] = "Give the Prometheus URL (the PROMETHEUS_URL setting is not set)."
        elif self.prometheus_threshold is not None:
            errors["prometheus_query"] = "Give the PromQL expression the threshold applies to, or clear the threshold."
        if self.prometheus_threshold is not None and not math.isfinite(self.prometheus_threshold):
            errors["prometheus_threshold"] = "The threshold must be a finite number."
        if errors:
            raise ValidationError(errors)

    @property
    def prometheus_endpoint(self) -> str:
        """The Prometheus server the check asks: the environment's own, else the setting."""
        return self.prometheus_url or settings.PROMETHEUS_URL

    @property
    def is_production(self) -> bool:
        return self.tier == Tier.PRODUCTION

    @property
    def is_deployable(self) -> bool:
        return bool(self.ecs_cluster and self.ecs_service and self.container_name)

    def went_live(self, release_id: int, *, color: str | None = None) -> None:
        """Record that `release_id` now serves here (and, for blue/green, on which colour)."""
        changes: dict = {"live_release_id": release_id}
        if color is not None:
            changes["live_color"] = color
        Environment.objects.filter(pk=self.pk).update(**changes)
        for name, value in changes.items():
            setattr(self, name, value)

    def active_freeze(self, at=None):
        at = at or timezone.now()
        return self.freeze_windows.filter(starts_at__lte=at, ends_at__gt=at).first()

    def service_for(self, color: str) -> str:
        return self.green_service if color == Color.GREEN else self.ecs_service

    def target_group_for(self, color: str) -> str:
        return self.green_target_group_arn if color == Color.GREEN else self.blue_target_group_arn


class FreezeWindow(models.Model):
    """A period when deploys are refused (an admin may override with a reason)."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="freeze_windows")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200)

    class Meta:
        db_table = "deployments_freezewindow"
        ordering = ["starts_at"]

    def __str__(self) -> str:
        return f"{self.environment} frozen {self.starts_at:%Y-%m-%d %H:%M} to {self.ends_at:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError("A freeze window must end after it starts.")
