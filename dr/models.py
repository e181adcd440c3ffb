"""Disaster recovery: the DR plan of an environment (the definition), its readiness checks, and
one DR operation record per failover, drill or failback run (what it did, for resume, teardown and
the measured RTO/RPO)."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from opsconsole.runs.models import Status


def validate_relative_path(value: str) -> None:
    if value.startswith("/") or ".." in value.split("/"):
        raise ValidationError("Use a path inside the environment's Terraform directory.")


class Operation(models.TextChoices):
    FAILOVER = "failover", "Failover"
    DRILL = "drill", "Drill"
    FAILBACK = "failback", "Failback"


# A failover or failback that ended in one of these may be run again (skipping finished steps).
RESUMABLE = (Status.FAILED, Status.ERRORED, Status.CANCELED)

RUN_KINDS = {
    Operation.FAILOVER: "dr.failover",
    Operation.DRILL: "dr.drill",
    Operation.FAILBACK: "dr.failback",
}


class Site(models.TextChoices):
    PRIMARY = "primary", "Primary region"
    DR = "dr", "DR region"


class DRPlan(models.Model):
    environment = models.OneToOneField("environments.Environment", on_delete=models.CASCADE, related_name="dr_plan")
    primary_region = models.CharField(max_length=30, default="us-east-1")
    dr_region = models.CharField(max_length=30, default="us-west-2")

    # DNS: the live record, and the drill record a drill may switch (never the live one).
    hosted_zone_id = models.CharField(max_length=64)
    record_name = models.CharField(max_length=255, help_text="e.g. api.example.com.")
    record_type = models.CharField(max_length=10, default="CNAME")
    record_ttl = models.PositiveIntegerField(default=60)
    primary_target = models.CharField(max_length=255, help_text="The primary load balancer's DNS name.")
    dr_target = models.CharField(max_length=255, help_text="The DR load balancer's DNS name.")
    drill_record_name = models.CharField(max_length=255, blank=True, help_text="e.g. drill.api.example.com.")

    # The DR side: the database to restore into, the service to bring up, how to test it.
    db_source_identifier = models.CharField(
        max_length=63, help_text="The primary RDS instance whose snapshots are copied to the DR region."
    )
    dr_db_instance = models.CharField(max_length=63, help_text="The instance a failover restores in the DR region.")
    dr_db_instance_class = models.CharField(max_length=40, default="db.t3.micro")
    dr_ecs_cluster = models.CharField(max_length=255)
    dr_ecs_service = models.CharField(max_length=255)
    dr_container_name = models.CharField(max_length=255, default="api")
    dr_desired_count = models.PositiveIntegerField(default=2, validators=[MinValueValidator(1)])
    dr_smoke_url = models.CharField(max_length=300, help_text="An URL of the DR load balancer that must answer 200.")
    primary_smoke_url = models.CharField(max_length=300, blank=True, help_text="Checked before a failback.")
    terraform_var_file = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_relative_path],
        help_text="e.g. env/dr.tfvars, in the environment's Terraform workspace directory. When set (and the "
        "environment has a Terraform workspace) readiness plans the DR stack with it and a failover applies it.",
    )
    terraform_workspace = models.CharField(
        max_length=90,
        blank=True,
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9][A-Za-z0-9_-]*$", "Letters, digits, '-' and '_' only (a Terraform workspace name)."
            )
        ],
        help_text="The Terraform workspace of the DR stack; empty: the environment's workspace name + '-dr'.",
    )

    rpo_minutes = models.PositiveIntegerField(default=60, validators=[MinValueValidator(1)])
    rto_minutes = models.PositiveIntegerField(default=60, validators=[MinValueValidator(1)])
    approval_window_minutes = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1)])
    cooldown_minutes = models.PositiveIntegerField(default=60)
    rollout_timeout_seconds = models.PositiveIntegerField(default=1800)
    restore_timeout_seconds = models.PositiveIntegerField(default=3600)

    active_site = models.CharField(max_length=10, choices=Site.choices, default=Site.PRIMARY, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "DR plan"
        ordering = ["environment__name"]

    def __str__(self) -> str:
        return f"DR plan of {self.environment}"

    @property
    def rpo(self) -> timedelta:
        return timedelta(minutes=self.rpo_minutes)

    @property
    def rto(self) -> timedelta:
        return timedelta(minutes=self.rto_minutes)

    def definition(self) -> dict:
        """What a run copies at launch: later edits to the plan do not change a run."""
        fields = [f.name for f in self._meta.concrete_fields if f.name not in ("id", "environment", "created_at")]
        return {name: getattr(self, name) for name in fields} | {
            "plan": self.pk,
            "environment": self.environment.name,
            "role_arn": self.environment.role_arn,
            "approval_ttl_minutes": self.approval_window_minutes,
        }


class ReadinessCheck(models.Model):
    """One pass of the readiness checklist: items are [{name, ok, detail, at}]."""

    plan = models.ForeignKey(DRPlan, on_delete=models.CASCADE, related_name="checks")
    checked_at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField(default=False)
    items = models.JSONField(default=list)
    requested_by_name = models.CharField(max_length=150, default="schedule")

    class Meta:
        ordering = ["-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"{self.plan} readiness {'ok' if self.ok else 'NOT ready'} at {self.checked_at:%Y-%m-%d %H:%M}"


class DROperation(models.Model):
    """A failover, drill or failback run's record. `progress` keeps what each finished step
    produced, so a resumed operation (a new run with `resumes`) skips those steps."""

    plan = models.ForeignKey(DRPlan, on_delete=models.CASCADE, related_name="operations")
    run = models.OneToOneField("runs.Run", on_delete=models.CASCADE, related_name="dr_operation")
    operation = models.CharField(max_length=10, choices=Operation.choices)
    resumes = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resumed_by")
    reason = models.CharField(max_length=500)
    progress = models.JSONField(default=dict, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    snapshot_identifier = models.CharField(max_length=300, blank=True)
    snapshot_at = models.DateTimeField(null=True, blank=True)
    dns_switched_at = models.DateTimeField(null=True, blank=True)
    rto_seconds = models.FloatField(null=True, blank=True)
    rpo_seconds = models.FloatField(null=True, blank=True)
    torn_down = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.get_operation_display()} of {self.plan.environment} (run #{self.run_id})"

    @property
    def rto(self) -> timedelta | None:
        return None if self.rto_seconds is None else timedelta(seconds=round(self.rto_seconds))

    @property
    def rpo(self) -> timedelta | None:
        return None if self.rpo_seconds is None else timedelta(seconds=round(self.rpo_seconds))

    def resume_refusal(self) -> tuple[str, str] | None:
        """Why this operation cannot be run again as (message, code), or None when it can: a
        failover or failback that was approved, ended without succeeding and was not resumed yet."""
        if self.operation == Operation.DRILL:
            return "A drill tears down what it created; start a new drill instead.", "drill"
        if self.run.status not in RESUMABLE:
            return "Only a failed, errored or canceled DR run can be resumed.", "not_failed"
        if self.approved_at is None:
            return "This run was never approved; request it again.", "not_approved"
        if self.resumed_by.exists():
            return "This run was already resumed; resume the latest attempt.", "already_resumed"
        if self.run.status == Status.CANCELED:
            # Someone decided to stop it: going on again needs the second person again, unless
            # that person's approval is still as fresh as a new one would have to be.
            window = timedelta(minutes=self.plan.approval_window_minutes)
            if timezone.now() - self.approved_at > window:
                return (
                    f"This run was canceled and its approval is older than the plan's approval window "
                    f"({self.plan.approval_window_minutes} min); request it again for a second person's approval.",
                    "approval_expired",
                )
        return None

    def first_attempt(self) -> DROperation:
        """The request this attempt continues (itself unless it is a resume)."""
        attempt = self
        while attempt.resumes_id is not None:
            attempt = attempt.resumes
        return attempt

    def can_resume(self) -> bool:
        return self.resume_refusal() is None

    def save_progress(self, key: str, value) -> None:
        self.progress[key] = value
        DROperation.objects.filter(pk=self.pk).update(progress=self.progress)
