"""What the views, the scheduler and the API call: keep a policy's beat schedule in step with it,
start backups, verifications and restores (refusing what must never happen), and say how fresh
backups are.

Each request_*() checks the principal's permission once, itself, and launches with
check_permission=False; the views only call them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.schedules import crontab as celery_crontab
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from backups.models import RUN_KINDS, Backup, BackupPolicy, BackupStatus, Kind, Restore, newest_good
from backups.postgres import check_database_name
from opsconsole.access.models import Action
from opsconsole.access.permissions import allowed
from opsconsole.runs.models import ACTIVE, Run
from opsconsole.runs.registry import request_identity
from opsconsole.runs.services import NotPermitted, Refused, launch, principal_name, through_service

POLICY_TASK = "backups.tasks.run_policy"
WARNING_FRACTION = 0.8  # an age past 80% of the RPO target shows as a warning


# --- Schedules ----------------------------------------------------------------------------------
def periodic_task_name(policy: BackupPolicy) -> str:
    return f"backups: policy {policy.pk} ({policy.environment.name} {policy.name})"[:200]


def sync_schedule(policy: BackupPolicy) -> PeriodicTask:
    """Create or update the policy's crontab PeriodicTask (what Celery beat and RQ cron read)."""
    minute, hour, day_of_month, month_of_year, day_of_week = policy.schedule.split()
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone="UTC",
    )
    task = PeriodicTask.objects.filter(pk=policy.periodic_task_id).first() or PeriodicTask()
    task.name = periodic_task_name(policy)
    task.task = POLICY_TASK
    task.kwargs = json.dumps({"policy_id": policy.pk})
    task.crontab, task.interval = schedule, None
    task.enabled = policy.enabled
    task.description = "Managed by the backup policy; edit the policy, not this task."
    task.save()
    if policy.periodic_task_id != task.pk:
        BackupPolicy.objects.filter(pk=policy.pk).update(periodic_task=task)
        policy.periodic_task = task
    return task


def remove_schedule(policy: BackupPolicy) -> None:
    if policy.periodic_task_id:
        PeriodicTask.objects.filter(pk=policy.periodic_task_id).delete()
    PeriodicTask.objects.filter(task=POLICY_TASK, kwargs=json.dumps({"policy_id": policy.pk})).delete()


def next_run(policy: BackupPolicy, now: datetime | None = None) -> datetime | None:
    if not policy.enabled:
        return None
    now = now or timezone.now()
    minute, hour, day_of_month, month_of_year, day_of_week = policy.schedule.split()
    schedule = celery_crontab(minute, hour, day_of_week, day_of_month, month_of_year, nowfun=lambda: now)
    return now + schedule.remaining_estimate(now)


# --- Starting runs ------------------------------------------------------------------------------
def policy_validator(kind: str):
    """The run kind's validate(): `{"policy": id}`, a policy of the run's environment, becomes the
    policy's copied definition (a caller never supplies the definition itself)."""

    def validate(params: dict, environment) -> dict:
        try:
            policy_id = int(params.get("policy"))
        except (TypeError, ValueError):
            raise ValueError("Name the backup policy to run (params.policy).") from None
        policy = BackupPolicy.objects.select_related("environment").filter(pk=policy_id).first()
        if policy is None or environment is None or policy.environment_id != environment.pk:
            raise ValueError(f"There is no backup policy #{policy_id} in {environment}.")
        if policy.kind != kind:
            raise ValueError(f"Policy {policy.name} makes {policy.get_kind_display()} backups, not {kind}.")
        return policy.definition()

    return validate


def request_backup(policy: BackupPolicy, principal, *, scheduled: bool = False) -> Run:
    """Back up now (a person) or on schedule (the system, no permission check)."""
    if not scheduled and not allowed(principal, Action.BACKUP, policy.environment):
        raise NotPermitted(f"You do not have permission to run backups in {policy.environment}.")
    return launch(
        policy.run_kind,
        principal=principal,
        environment=policy.environment,
        params={"policy": policy.pk},
        check_permission=False,
    )


def request_verification(backup: Backup, principal) -> Run:
    """Test now that `backup` restores (a pg_dump: into a scratch database, dropped after)."""
    if not allowed(principal, Action.BACKUP, backup.environment):
        # The words launch() used when it checked this itself.
        raise NotPermitted(f"You do not have permission to start Verify a restore in {backup.environment}.")
    return launch(
        "backups.verify",
        principal=principal,
        environment=backup.environment,
        params={"backup": backup.pk},
        check_permission=False,
    )


def live_databases(host: str) -> set[str]:
    """Database names that some policy backs up on this host: the live ones, never restore targets."""
    return set(
        BackupPolicy.objects.filter(kind=Kind.PG_DUMP, database_host=host).values_list("database_name", flat=True)
    )


def restore_refusal(backup: Backup, target: str) -> str | None:
    """Why this restore must not happen, or None."""
    if backup.status != BackupStatus.AVAILABLE:
        return f"Backup #{backup.pk} is {backup.get_status_display().lower()}; only an available backup restores."
    policy = backup.policy
    if backup.kind == Kind.PG_DUMP:
        try:
            check_database_name(target)
        except ValueError as exc:
            return str(exc)
        if policy is None:
            return "The backup's policy was deleted, so the database server to restore onto is unknown."
        if target in live_databases(policy.database_host) or target in ("postgres", "template0", "template1"):
            return (
                f"Restoring into {target} would overwrite a live database in place; that is refused. "
                "Restore into a new database and switch over deliberately."
            )
        return None
    if backup.kind == Kind.RDS_SNAPSHOT:
        if (
            not target
            or not target[0].isalpha()
            or not all(c.isalnum() or c == "-" for c in target)
            or len(target) > 63
        ):
            return "An RDS instance identifier is letters, digits and dashes, starting with a letter."
        sources = set(BackupPolicy.objects.filter(kind=Kind.RDS_SNAPSHOT).values_list("source_identifier", flat=True))
        if target in sources:
            return (
                f"{target} is a live instance that policies back up; restoring over it in place is refused. "
                "A snapshot restores into a new instance."
            )
        return None
    return f"Restoring a {backup.get_kind_display()} is not supported by the console yet (see docs/backups.md)."


def validate_restore(params: dict, environment) -> dict:
    try:
        backup = Backup.objects.select_related("policy").get(pk=int(params.get("backup")), environment=environment)
    except (TypeError, ValueError, Backup.DoesNotExist):
        raise ValueError(f"Name an existing backup of {environment} to restore (params.backup).") from None
    target = str(params.get("target", "")).strip()
    refusal = restore_refusal(backup, target)
    if refusal:
        raise ValueError(refusal)
    definition = backup.policy.definition() if backup.policy else {}
    return {
        "backup": backup.pk,
        "kind": backup.kind,
        "target": target,
        "environment": backup.environment.name,
        "aws_region": backup.region,
        "role_arn": backup.environment.role_arn,
        "identifier": backup.identifier,
        "bucket": backup.bucket,
        "sha256": backup.sha256,
        **{key: definition.get(key, "") for key in ("database_host", "database_port", "database_user")},
        "database_name": target,
        "password_source": definition.get("password_source", ""),
    }


@request_identity("backups.restore")
def restore_identity(params: dict) -> str:
    """Two restores are the same request when they restore the same backup into the same target:
    while one is active, launch() refuses the other as a duplicate (the runs table's unique index
    holds it when two arrive at once)."""
    return f"{params['backup']} {params['target']}"


def request_restore(backup: Backup, principal, target: str, confirmation: str) -> Run:
    """Restore `backup` into a new `target`, typed twice. Refusals change nothing; an identical
    restore still active is refused as a duplicate naming its run."""
    target = (target or "").strip()
    if not allowed(principal, Action.BACKUP, backup.environment):
        raise NotPermitted(f"You do not have permission to restore backups in {backup.environment}.")
    if not target:
        raise Refused("Name the new database or instance to restore into.")
    # As typed: trimming, case folding or folding look-alikes would accept what was not typed.
    if (confirmation or "") != target:
        raise Refused(f"Type the target name ({target}) exactly to confirm the restore.")
    with transaction.atomic(), through_service("backups.restore"):
        run = launch(
            "backups.restore",
            principal=principal,
            environment=backup.environment,
            params={"backup": backup.pk, "target": target},
            check_permission=False,
        )
        Restore.objects.create(backup=backup, run=run, target=target, requested_by_name=principal_name(principal))
    return run


def active_run(policy: BackupPolicy) -> Run | None:
    return Run.objects.filter(kind=policy.run_kind, params__policy=policy.pk, status__in=ACTIVE).first()


# --- Retention ----------------------------------------------------------------------------------
def expired(backups: list[Backup], retention_days: int, min_copies: int, now: datetime) -> list[Backup]:
    """Which of a policy's available, console-made backups retention may delete: those older than
    the retention period, but never the newest one nor any of the newest `min_copies`."""
    ordered = sorted(backups, key=lambda b: b.finished_at or b.started_at, reverse=True)
    kept = max(min_copies, 1)
    cutoff = now - timedelta(days=retention_days)
    return [b for b in ordered[kept:] if (b.finished_at or b.started_at) < cutoff]


# --- Freshness (the page) ----------------------------------------------------------------------
@dataclass
class Freshness:
    policy: BackupPolicy
    newest: Backup | None
    last_verified: Backup | None
    next_run: datetime | None
    active: Run | None
    state: str  # ok / warning / overdue

    @property
    def age(self) -> timedelta | None:
        return timezone.now() - self.newest.finished_at if self.newest else None


def freshness_state(age: timedelta | None, rpo: timedelta) -> str:
    if age is None or age > rpo:
        return "overdue"
    return "warning" if age > rpo * WARNING_FRACTION else "ok"


def freshness(policies) -> list[Freshness]:
    rows = []
    now = timezone.now()
    for policy in policies:
        newest = newest_good(policy.backups)
        verified = policy.backups.exclude(verified_at=None).order_by("-verified_at").first()
        age = now - newest.finished_at if newest else None
        rows.append(
            Freshness(
                policy, newest, verified, next_run(policy, now), active_run(policy), freshness_state(age, policy.rpo)
            )
        )
    return rows


__all__ = ["RUN_KINDS"]
