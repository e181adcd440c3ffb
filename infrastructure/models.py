"""A Workspace is the Terraform definition of one environment (which code, which var file,
which secrets come from the worker's environment) and its drift status. A Plan is what one plan
or drift-check run found: the masked resource changes, the summary, and the saved plan file
that an apply run applies exactly."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from opsconsole.runs.models import Run, Status

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def validate_secret_variables(value) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and VARIABLE_NAME.match(k) and VARIABLE_NAME.match(v)
        for k, v in value.items()
    ):
        raise ValidationError('Map Terraform variable names to environment variable names: {"db_password": "DB_PW"}.')


def validate_relative_path(value: str) -> None:
    if value.startswith("/") or ".." in value.split("/"):
        raise ValidationError("Use a path inside the Terraform directory.")


class Drift(models.TextChoices):
    UNKNOWN = "unknown", "Not checked"
    IN_SYNC = "in_sync", "In sync"
    DRIFTED = "drifted", "Drifted"
    ERROR = "error", "Check failed"


class Workspace(models.Model):
    environment = models.OneToOneField(
        "environments.Environment", on_delete=models.CASCADE, related_name="terraform_workspace"
    )
    name = models.CharField(max_length=90, help_text="The Terraform workspace; usually the environment's name.")
    directory = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_relative_path],
        help_text="Inside TERRAFORM_ROOT; empty: its root.",
    )
    var_file = models.CharField(
        max_length=200, blank=True, validators=[validate_relative_path], help_text="e.g. env/staging.tfvars"
    )
    backend_config = models.CharField(
        max_length=200, blank=True, validators=[validate_relative_path], help_text="e.g. env/staging.s3.tfbackend"
    )
    secret_variables = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_secret_variables],
        help_text="Terraform variable -> worker environment variable; passed as TF_VAR_*, never on argv.",
    )
    drift_check = models.BooleanField(default=True, help_text="Run a scheduled drift check.")
    drift_status = models.CharField(max_length=10, choices=Drift.choices, default=Drift.UNKNOWN, editable=False)
    drift_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    drifted_resources = models.JSONField(default=list, blank=True, editable=False)
    outputs = models.JSONField(default=dict, blank=True, editable=False, help_text="Last applied outputs, masked.")

    class Meta:
        ordering = ["environment__tier", "environment__name"]

    def __str__(self) -> str:
        return f"{self.environment} ({self.name})"

    def mark_drift(self, status: str, resources: list | None = None) -> None:
        self.drift_status, self.drift_checked_at, self.drifted_resources = status, timezone.now(), resources or []
        self.save(update_fields=["drift_status", "drift_checked_at", "drifted_resources"])

    def last_plan(self):
        return self.plans.filter(purpose=Purpose.PLAN).select_related("run").order_by("-id").first()


class Purpose(models.TextChoices):
    PLAN = "plan", "Plan"
    DRIFT = "drift", "Drift check"


class Plan(models.Model):
    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="terraform_plan")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="plans")
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.PLAN)
    has_changes = models.BooleanField(default=False)
    summary = models.JSONField(default=dict, blank=True)
    changes = models.JSONField(
        default=dict, blank=True, help_text="Resource and output changes, sensitive values masked."
    )
    plan_file = models.CharField(max_length=500, blank=True)
    plan_sha256 = models.CharField(max_length=64, blank=True)
    code_sha256 = models.CharField(max_length=64, blank=True, help_text="The Terraform code the plan was made from.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Plan of run #{self.run_id}"

    def apply_runs(self):
        return Run.objects.filter(kind="terraform.apply", params__plan_run=self.run_id).order_by("-id")

    def staleness(self, exclude_run: int | None = None) -> str:
        """Why this plan may no longer be applied, or "" if it may."""
        if self.purpose != Purpose.PLAN:
            return "A drift check's plan is not applied; start a plan."
        if self.run.status != Status.SUCCEEDED:
            return f"Run #{self.run_id} did not succeed, so it has no plan to apply."
        if not self.has_changes:
            return "The plan has no changes to apply."
        # Any apply on the workspace that started after this plan may have changed the state.
        later = (
            Run.objects.filter(
                environment_id=self.workspace.environment_id,
                kind="terraform.apply",
                started_at__gte=self.run.started_at,
            )
            .exclude(pk=exclude_run)
            .order_by("id")
            .first()
        )
        if later is not None:
            return (
                f"The plan from run #{self.run_id} is stale: apply run #{later.pk} changed the workspace "
                "after it was made. Plan again."
            )
        return ""
