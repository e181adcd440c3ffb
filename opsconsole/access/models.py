"""Who may do what, where: role bindings per environment and API tokens for CI."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "opc_"


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    DEPLOYER = "deployer", "Deployer"
    APPROVER = "approver", "Approver"
    BACKUP_OPERATOR = "backup_operator", "Backup operator"
    DR_OPERATOR = "dr_operator", "DR operator"
    ADMIN = "admin", "Admin"


class Action(models.TextChoices):
    """What a permission check asks for. Each role grants a set of these (see ROLE_ACTIONS)."""

    VIEW = "view", "View"
    DEPLOY = "deploy", "Deploy and roll back"
    APPROVE = "approve", "Approve runs"
    BACKUP = "backup", "Run backups and restores"
    DR = "dr", "Fail over to DR"
    RUN = "run", "Start maintenance runs"
    ADMIN = "admin", "Administer"


ROLE_ACTIONS: dict[str, frozenset[str]] = {
    Role.VIEWER: frozenset({Action.VIEW}),
    Role.DEPLOYER: frozenset({Action.VIEW, Action.DEPLOY, Action.RUN}),
    Role.APPROVER: frozenset({Action.VIEW, Action.APPROVE}),
    Role.BACKUP_OPERATOR: frozenset({Action.VIEW, Action.BACKUP, Action.RUN}),
    Role.DR_OPERATOR: frozenset({Action.VIEW, Action.DR}),
    Role.ADMIN: frozenset(Action.values),
}


class RoleBinding(models.Model):
    """Gives a user a role in one environment, or in every environment when environment is empty."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_bindings")
    role = models.CharField(max_length=20, choices=Role.choices)
    environment = models.ForeignKey(
        "environments.Environment",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="role_bindings",
        help_text="Leave empty to grant the role in every environment.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "role", "environment"], name="unique_role_binding"),
            models.UniqueConstraint(
                fields=["user", "role"], condition=models.Q(environment=None), name="unique_global_role_binding"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.get_role_display()} in {self.environment or 'every environment'}"


def hash_token(raw: str) -> str:
    # Tokens are 256 random bits, so a plain SHA-256 is enough (no dictionary to guess from).
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at=None)


class ApiToken(models.Model):
    """A bearer token for CI. The raw value is shown once at creation; only its hash is kept."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="The first characters, to tell tokens apart.")
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list, help_text="Actions this token may perform.")
    environments = models.ManyToManyField(
        "environments.Environment", blank=True, help_text="Leave empty for every environment."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, name: str, scopes: list[str], environments=(), created_by=None) -> tuple[ApiToken, str]:
        """Create a token and return it with its raw value, which is never stored."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            name=name, prefix=raw[:10], token_hash=hash_token(raw), scopes=sorted(set(scopes)), created_by=created_by
        )
        token.environments.set(environments)
        return token, raw

    @classmethod
    def authenticate(cls, raw: str) -> ApiToken | None:
        """The live token with this value; a token whose owner was deactivated stops working."""
        token = (
            cls.objects.active()
            .select_related("created_by")
            .filter(token_hash=hash_token(raw))
            .filter(models.Q(created_by=None) | models.Q(created_by__is_active=True))
            .first()
        )
        if token is not None:
            cls.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return token

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])
