"""Backup policies (the definition: what, when, where, how long), backups (each execution's
product: a snapshot or an object, with its checksum and DR copy) and restores."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from backups.credentials import validate_source

CRON_FIELD = re.compile(r"^[0-9*/,\-]+$")
IDENTIFIER = RegexValidator(r"^[A-Za-z][A-Za-z0-9-]{0,62}$", "Letters, digits and dashes, starting with a letter.")
BUCKET = RegexValidator(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", "An S3 bucket name.")


class Kind(models.TextChoices):
    RDS_SNAPSHOT = "rds_snapshot", "RDS snapshot"
    PG_DUMP = "pg_dump", "pg_dump to S3"
    REDIS_SNAPSHOT = "redis_snapshot", "Redis snapshot"


RUN_KINDS = {
    Kind.RDS_SNAPSHOT: "backups.rds_snapshot",
    Kind.PG_DUMP: "backups.pg_dump",
    Kind.REDIS_SNAPSHOT: "backups.redis_snapshot",
}


# Where the worker connects, as whom, and which of its secrets it sends there: only an
# administrator (a superuser) sets them; the Backups page shows them read-only to everyone else
# (docs/backups.md). Database name and user belong here too: with them an operator could send the
# administrator's password as another user, or read another database on that server.
ADMIN_FIELDS = ("database_host", "database_port", "database_name", "database_user", "password_source")


def validate_cron(value: str) -> None:
    fields = value.split()
    if len(fields) != 5 or not all(CRON_FIELD.match(field) for field in fields):
        raise ValidationError("A schedule is five crontab fields: minute hour day-of-month month day-of-week.")


class BackupPolicy(models.Model):
    environment = models.ForeignKey(
        "environments.Environment", on_delete=models.CASCADE, related_name="backup_policies"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=80, help_text="e.g. nightly database dump")
    enabled = models.BooleanField(default=True)
    schedule = models.CharField(
        max_length=100, default="0 3 * * *", validators=[validate_cron], help_text="crontab, UTC: 0 3 * * *"
    )
    retention_days = models.PositiveIntegerField(default=7, validators=[MinValueValidator(1)])
    min_copies = models.PositiveIntegerField(
        default=3, validators=[MinValueValidator(1)], help_text="Retention never goes below this many."
    )
    rpo_minutes = models.PositiveIntegerField(
        default=24 * 60, validators=[MinValueValidator(1)], help_text="Maximum acceptable age of the newest backup."
    )
    copy_to_dr = models.BooleanField(default=True)
    dr_region = models.CharField(max_length=30, blank=True, help_text="Empty: BACKUP_DR_REGION (us-west-2).")

    # RDS snapshot: the instance. Redis snapshot: the replication group (or cache cluster).
    source_identifier = models.CharField(max_length=63, blank=True, validators=[IDENTIFIER])

    # pg_dump: where the database is and where the password comes from (never the password). All
    # five are ADMIN_FIELDS: they aim the worker's credentials.
    database_host = models.CharField(max_length=255, blank=True)
    database_port = models.PositiveIntegerField(default=5432)
    database_name = models.CharField(max_length=63, blank=True)
    database_user = models.CharField(max_length=63, blank=True)
    password_source = models.CharField(
        max_length=300, blank=True, help_text='"env:VARIABLE" or "secretsmanager:SECRET-ID"; empty: none.'
    )

    # pg_dump and Redis exports: the bucket in the environment's region, and its DR twin.
    bucket = models.CharField(max_length=63, blank=True, validators=[BUCKET])
    prefix = models.CharField(max_length=200, blank=True, help_text="e.g. database/")
    dr_bucket = models.CharField(max_length=63, blank=True, validators=[BUCKET])

    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["environment__name", "kind", "name"]
        verbose_name_plural = "backup policies"
        constraints = [models.UniqueConstraint(fields=["environment", "name"], name="unique_backup_policy_name")]

    def __str__(self) -> str:
        return f"{self.environment} · {self.name}"

    def clean(self) -> None:
        errors = {}
        if self.kind in (Kind.RDS_SNAPSHOT, Kind.REDIS_SNAPSHOT) and not self.source_identifier:
            errors["source_identifier"] = "Name the RDS instance or Redis replication group to snapshot."
        if self.kind == Kind.PG_DUMP:
            for name in ("database_host", "database_name", "database_user"):
                if not getattr(self, name):
                    errors[name] = "Needed for pg_dump."
            try:
                validate_source(self.password_source)
            except ValueError as exc:
                errors["password_source"] = str(exc)
        if self.kind in (Kind.PG_DUMP, Kind.REDIS_SNAPSHOT) and not self.bucket:
            errors["bucket"] = "Name the S3 bucket (in the environment's region) that receives the backups."
        if self.copy_to_dr and self.kind != Kind.RDS_SNAPSHOT and not self.dr_bucket:
            errors["dr_bucket"] = "Name the DR region's bucket, or turn the DR copy off."
        if errors:
            raise ValidationError(errors)

    @property
    def run_kind(self) -> str:
        return RUN_KINDS[self.kind]

    @property
    def rpo(self) -> timedelta:
        return timedelta(minutes=self.rpo_minutes)

    def definition(self) -> dict:
        """What a run copies at launch: later edits to the policy do not change a run."""
        from backups import conf

        env = self.environment
        return {
            "policy": self.pk,
            "policy_name": self.name,
            "kind": self.kind,
            "environment": env.name,
            "aws_region": env.aws_region,
            "role_arn": env.role_arn,
            "source_identifier": self.source_identifier,
            "database_host": self.database_host,
            "database_port": self.database_port,
            "database_name": self.database_name,
            "database_user": self.database_user,
            "password_source": self.password_source,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "copy_to_dr": self.copy_to_dr,
            "dr_region": self.dr_region or conf.dr_region(),
            "dr_bucket": self.dr_bucket,
            "retention_days": self.retention_days,
            "min_copies": self.min_copies,
        }


class BackupStatus(models.TextChoices):
    RUNNING = "running", "Running"
    AVAILABLE = "available", "Available"
    FAILED = "failed", "Failed"
    DELETED = "deleted", "Deleted"


class Verification(models.TextChoices):
    NONE = "", "Not verified"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


# The one definition of a good backup, the recovery point that the Backups page, the overdue
# notice, the Delivery page and /metrics all measure from: it finished successfully, it is still
# there, and no restore test has proven that it does not restore. One not tested yet counts (most
# kinds are never tested); one whose restore test failed does not, whatever it cost to make.
RESTORABLE = (Verification.NONE, Verification.PASSED)


def good_backup(prefix: str = "", *, including_deleted: bool = False) -> Q:
    """The condition on a Backup (or, with `prefix` such as "backups__", on a related one). With
    `including_deleted`, also those retention deleted since: good while they lasted (history)."""
    statuses = (BackupStatus.AVAILABLE, BackupStatus.DELETED) if including_deleted else (BackupStatus.AVAILABLE,)
    return Q(
        **{
            f"{prefix}status__in": statuses,
            f"{prefix}finished_at__isnull": False,
            f"{prefix}verification__in": RESTORABLE,
        }
    )


class BackupQuerySet(models.QuerySet):
    def available(self) -> BackupQuerySet:
        """Backups that exist now, whatever a restore test said (what can be verified or restored)."""
        return self.filter(status=BackupStatus.AVAILABLE)

    def good(self) -> BackupQuerySet:
        """Good backups now: see good_backup()."""
        return self.filter(good_backup())

    def were_good(self) -> BackupQuerySet:
        """Good backups, also those retention has deleted since (for history: see good_backup())."""
        return self.filter(good_backup(including_deleted=True))


def newest_good(backups: models.QuerySet) -> Backup | None:
    """The newest good backup among `backups` (a policy's, an environment's), or None."""
    return backups.good().order_by("-finished_at", "-pk").first()


class Backup(models.Model):
    policy = models.ForeignKey(BackupPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="backups")
    policy_name = models.CharField(max_length=80, blank=True)
    environment = models.ForeignKey("environments.Environment", on_delete=models.PROTECT, related_name="backups")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    run = models.OneToOneField("runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="backup")
    status = models.CharField(max_length=20, choices=BackupStatus.choices, default=BackupStatus.RUNNING)
    created_by_console = models.BooleanField(default=True)

    region = models.CharField(max_length=30)
    identifier = models.CharField(max_length=300, blank=True, help_text="Snapshot id, or the object's key.")
    bucket = models.CharField(max_length=63, blank=True)
    dr_region = models.CharField(max_length=30, blank=True)
    dr_identifier = models.CharField(max_length=300, blank=True)
    dr_bucket = models.CharField(max_length=63, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verification = models.CharField(max_length=10, choices=Verification.choices, blank=True, default="")
    verification_detail = models.TextField(blank=True)

    objects = BackupQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["environment", "kind", "-id"]),
            models.Index(fields=["policy", "status", "-finished_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.identifier or '#' + str(self.pk)}"

    @property
    def duration(self) -> timedelta | None:
        return self.finished_at - self.started_at if self.finished_at else None

    @property
    def location(self) -> str:
        if self.bucket:
            return f"s3://{self.bucket}/{self.identifier}"
        return self.identifier

    def succeed(self, **fields) -> None:
        self._finish(BackupStatus.AVAILABLE, **fields)

    def fail(self, error: str) -> None:
        self._finish(BackupStatus.FAILED, error=error)

    def _finish(self, status: str, **fields) -> None:
        fields.setdefault("finished_at", timezone.now())
        for name, value in fields.items():
            setattr(self, name, value)
        self.status = status
        self.save()

    def mark_deleted(self) -> None:
        self.status, self.deleted_at = BackupStatus.DELETED, timezone.now()
        self.save(update_fields=["status", "deleted_at"])

    def record_verification(self, passed: bool, detail: str) -> None:
        self.verified_at = timezone.now()
        self.verification = Verification.PASSED if passed else Verification.FAILED
        self.verification_detail = detail
        self.save(update_fields=["verified_at", "verification", "verification_detail"])


class Restore(models.Model):
    """A request to restore a backup into a new target (an RDS instance or a database)."""

    backup = models.ForeignKey(Backup, on_delete=models.PROTECT, related_name="restores")
    run = models.OneToOneField("runs.Run", on_delete=models.CASCADE, related_name="restore")
    target = models.CharField(max_length=63)
    requested_by_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"restore of {self.backup} into {self.target}"
