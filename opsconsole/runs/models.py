"""Run: one row that is the truth about one execution; RunEvent: its append-only log;
EnvironmentLock: at most one mutating run (or a manual hold) per environment; IdempotencyKey: an
Idempotency-Key or a form's one-time token, and the answer its first request got.

State changes go through `Run.transition()`, a conditional UPDATE that refuses what the state
machine forbids, so two processes can never both move a run out of the same state.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from opsconsole.runs.signals import run_status_changed


class Status(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    ROLLING_BACK = "rolling_back", "Rolling back"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ERRORED = "errored", "Errored"
    CANCELED = "canceled", "Canceled"
    ROLLED_BACK = "rolled_back", "Rolled back"


ACTIVE = frozenset({Status.AWAITING_APPROVAL, Status.QUEUED, Status.RUNNING, Status.ROLLING_BACK})
IDENTITY_LENGTH = 200
IDENTITY_INDEX = "one_active_run_per_identity"
EXECUTING = frozenset({Status.RUNNING, Status.ROLLING_BACK})
TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.ERRORED, Status.CANCELED, Status.ROLLED_BACK})

TRANSITIONS: dict[str, frozenset[str]] = {
    Status.AWAITING_APPROVAL: frozenset({Status.QUEUED, Status.CANCELED}),
    Status.QUEUED: frozenset({Status.RUNNING, Status.CANCELED, Status.ERRORED}),
    Status.RUNNING: frozenset({Status.SUCCEEDED, Status.FAILED, Status.ERRORED, Status.CANCELED, Status.ROLLING_BACK}),
    Status.ROLLING_BACK: frozenset({Status.ROLLED_BACK, Status.FAILED, Status.ERRORED}),
    **{status: frozenset() for status in TERMINAL},
}


class IllegalTransition(Exception):
    def __init__(self, run_id: int, current: str, wanted: str):
        self.current, self.wanted = current, wanted
        super().__init__(f"Run #{run_id} cannot go from {current} to {wanted}.")


class Run(models.Model):
    kind = models.CharField(max_length=60, db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    environment = models.ForeignKey(
        "environments.Environment", null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    params = models.JSONField(default=dict, blank=True, help_text="The definition, copied at launch.")
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When its message last went to the queue.")
    worker = models.CharField(max_length=200, blank=True)
    cancel_requested = models.BooleanField(default=False)
    steps = models.JSONField(default=list, blank=True, help_text="The job's checklist and each step's state.")
    identity = models.CharField(
        max_length=IDENTITY_LENGTH,
        blank=True,
        help_text="What makes two requests of this kind the same (the kind's identity(params)); '' for none.",
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["environment", "-id"]),
            models.Index(fields=["status", "-id"]),
            models.Index(fields=["kind", "-id"]),
        ]
        constraints = [
            # At most one active run per environment, kind and identity: two identical requests
            # racing past every check still make one run (launch() turns the second into a refusal).
            models.UniqueConstraint(
                fields=["environment", "kind", "identity"],
                condition=models.Q(status__in=sorted(ACTIVE)) & ~models.Q(identity=""),
                name=IDENTITY_INDEX,
            )
        ]

    def __str__(self) -> str:
        return f"Run #{self.pk} {self.kind}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def duration(self):
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    def transition(self, to: str, **fields) -> None:
        """Move to `to` if the state machine allows it from the current stored state.

        The UPDATE is conditional on the state read, so a concurrent change makes it fail
        loudly instead of overwriting. Extra fields are saved in the same statement.
        """
        current = type(self).objects.filter(pk=self.pk).values_list("status", flat=True).first()
        if current is None or to not in TRANSITIONS[current]:
            raise IllegalTransition(self.pk, current, to)
        now = timezone.now()
        if to in TERMINAL:
            fields.setdefault("finished_at", now)
        updated = type(self).objects.filter(pk=self.pk, status=current).update(status=to, **fields)
        if not updated:
            latest = type(self).objects.filter(pk=self.pk).values_list("status", flat=True).first()
            raise IllegalTransition(self.pk, latest, to)
        self.status = to
        for name, value in fields.items():
            setattr(self, name, value)
        if to in TERMINAL:
            EnvironmentLock.objects.filter(run_id=self.pk).delete()
        transaction.on_commit(lambda: _status_changed(self, current, to))

    def events_after(self, seq: int, limit: int = 1000):
        return self.events.filter(seq__gt=seq).order_by("seq")[:limit]


def _status_changed(run: Run, previous: str, status: str) -> None:
    run_status_changed.send_robust(sender=Run, run=run, previous=previous, status=status)


class Level(models.TextChoices):
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class RunEvent(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq = models.IntegerField()
    at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="unique_run_event_seq")]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.seq} {self.message[:60]}"


class LockHeld(Exception):
    def __init__(self, lock: EnvironmentLock | None):
        self.lock = lock
        holder = lock.describe() if lock else "another run"
        super().__init__(f"The environment is locked by {holder}.")


class EnvironmentLock(models.Model):
    """At most one row per environment: the run mutating it, or a person holding it by hand."""

    environment = models.OneToOneField("environments.Environment", on_delete=models.CASCADE, related_name="lock")
    run = models.OneToOneField(Run, null=True, blank=True, on_delete=models.CASCADE, related_name="lock")
    held_by = models.CharField(max_length=150, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    acquired_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.environment} locked by {self.describe()}"

    def describe(self) -> str:
        if self.run_id:
            return f"run #{self.run_id}"
        return f"{self.held_by} ({self.reason})" if self.reason else self.held_by

    @classmethod
    def acquire(cls, environment, *, run: Run | None = None, held_by: str = "", reason: str = "") -> EnvironmentLock:
        """Take the lock or raise LockHeld naming the holder. Never waits."""
        try:
            with transaction.atomic():
                return cls.objects.create(environment=environment, run=run, held_by=held_by, reason=reason)
        except IntegrityError:
            raise LockHeld(cls.objects.filter(environment=environment).first()) from None


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class Approval(models.Model):
    """One person's vote on a run awaiting approval (the rules: opsconsole/runs/approvals.py)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="approvals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    comment = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "deployments_approval"  # its table from when approvals lived in the deployments app
        ordering = ["at"]
        constraints = [models.UniqueConstraint(fields=["run", "user"], name="one_vote_per_user")]

    def __str__(self) -> str:
        return f"{self.user} {self.decision}s run #{self.run_id}"


class IdempotencyKey(models.Model):
    """A key one principal sent (an API Idempotency-Key, a form's one-time token), a fingerprint of
    the request it came with, and the answer that request got, replayed to a repeat for a day
    (opsconsole/runs/idempotency.py). Only successful answers are kept, with secret-looking values
    masked."""

    principal = models.CharField(max_length=40, help_text="user:<id> or token:<id>")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body.")
    status_code = models.PositiveSmallIntegerField(default=0)
    body = models.JSONField(default=dict, blank=True)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["principal", "key"], name="one_idempotency_key_per_principal")]

    def __str__(self) -> str:
        return f"{self.principal} {self.key[:20]}"
