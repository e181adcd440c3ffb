"""Releases (what we deploy) and deployments (each deploy or rollback run's record). Environments
live in the core (opsconsole.environments)."""

from __future__ import annotations

import re

from django.conf import settings
from django.db import models
from django.utils import timezone

from opsconsole.environments.models import Color, Environment

DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")
TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # Docker's tag grammar


class Release(models.Model):
    repository = models.CharField(max_length=255, help_text="e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/api")
    tag = models.CharField(max_length=128)
    digest = models.CharField(max_length=71, unique=True)
    git_sha = models.CharField(max_length=40, blank=True)
    commit_message = models.TextField(blank=True)
    commit_url = models.URLField(max_length=300, blank=True)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    registered_by_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["repository", "tag"])]

    def __str__(self) -> str:
        return f"{self.tag} ({self.short_digest})"

    @property
    def short_digest(self) -> str:
        return self.digest.removeprefix("sha256:")[:12]

    @property
    def image(self) -> str:
        """Deploy by digest: a tag can be moved, a digest cannot."""
        return f"{self.repository}@{self.digest}"


class DeploymentKind(models.TextChoices):
    DEPLOY = "deploy", "Deploy"
    ROLLBACK = "rollback", "Rollback"


class Deployment(models.Model):
    """The deployment record of one deploy or rollback run: what went out where, and what it replaced."""

    run = models.OneToOneField("runs.Run", on_delete=models.CASCADE, related_name="deployment")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="deployments")
    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="deployments")
    kind = models.CharField(max_length=10, choices=DeploymentKind.choices, default=DeploymentKind.DEPLOY)
    previous_release = models.ForeignKey(Release, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    task_definition_arn = models.CharField(max_length=300, blank=True)
    previous_task_definition_arn = models.CharField(max_length=300, blank=True)
    color = models.CharField(max_length=10, choices=Color.choices, blank=True)
    freeze_override_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["environment", "-id"]), models.Index(fields=["release", "-id"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.release} to {self.environment}"
