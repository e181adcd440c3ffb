"""Who may do what, where: role bindings per environment and API tokens for CI."""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "opc_"
# The tokens page highlights a live token that stops working within this long.
EXPIRY_WARNING = timedelta(days=7)


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


def default_expiry() -> datetime:
    """A new token's expiry when nobody chose one; also what existing tokens got when expiry came in."""
    return timezone.now() + timedelta(days=settings.API_TOKEN_DEFAULT_DAYS)


class TokenExpired(Exception):
    """A live token past its expiry was presented: the API answers 401 saying when it expired."""

    code = "token_expired"

    def __init__(self, expired_at: datetime):
        self.expired_at = expired_at
        super().__init__(
            f"The API token expired on {expired_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC. Ask an admin for a new one "
            "on the API tokens page."
        )


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        """Neither revoked nor expired."""
        return self.filter(revoked_at=None, expires_at__gt=timezone.now())


class ApiToken(models.Model):
    """A bearer token for CI. The raw value is shown once at creation; only its hash is kept."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="The first characters, to tell tokens apart.")
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list, help_text="Actions this token may perform.")
    all_environments = models.BooleanField(
        default=False, help_text="Every environment, including ones added later; the list below is then empty."
    )
    environments = models.ManyToManyField(
        "environments.Environment",
        blank=True,
        help_text="The environments the token may act in. None and not all environments: it reaches nothing.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(default=default_expiry)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(
        cls,
        name: str,
        scopes: list[str],
        environments: Iterable = (),
        created_by=None,
        *,
        all_environments: bool | None = None,
        lifetime_days: int | None = None,
    ) -> tuple[ApiToken, str]:
        """Create a token and return it with its raw value, which is never stored.

        `all_environments` left out means: every environment when none is named (the shorthand
        of shells and tests); the tokens page always says which. `lifetime_days` defaults to
        API_TOKEN_DEFAULT_DAYS and may not exceed API_TOKEN_MAX_DAYS.
        """
        environments = list(environments)
        if all_environments is None:
            all_environments = not environments
        if all_environments and environments:
            raise ValueError("A token reaches either every environment or the ones named, not both.")
        lifetime_days = settings.API_TOKEN_DEFAULT_DAYS if lifetime_days is None else lifetime_days
        if not 1 <= lifetime_days <= settings.API_TOKEN_MAX_DAYS:
            raise ValueError(f"A token lives from 1 to {settings.API_TOKEN_MAX_DAYS} days, not {lifetime_days}.")
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = timezone.now()
        token = cls.objects.create(
            name=name,
            prefix=raw[:10],
            token_hash=hash_token(raw),
            scopes=sorted(set(scopes)),
            all_environments=all_environments,
            created_by=created_by,
            created_at=now,
            expires_at=now + timedelta(days=lifetime_days),
        )
        token.environments.set(environments)
        return token, raw

    @classmethod
    def authenticate(cls, raw: str) -> ApiToken | None:
        """The live token with this value, or None; raises TokenExpired for one past its expiry.

        A token whose owner was deactivated stops working; so does a revoked one (None for both:
        nothing to tell the caller but "not valid").
        """
        token = (
            cls.objects.filter(revoked_at=None)
            .select_related("created_by")
            .filter(token_hash=hash_token(raw))
            .filter(models.Q(created_by=None) | models.Q(created_by__is_active=True))
            .first()
        )
        if token is None:
            return None
        if token.is_expired:
            raise TokenExpired(token.expires_at)
        cls.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return token

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        """Usable: neither revoked nor expired."""
        return self.revoked_at is None and not self.is_expired

    @property
    def days_left(self) -> int:
        """Days until expiry, counting a part of a day as a day (a new 90-day token: 90)."""
        return max(0, math.ceil((self.expires_at - timezone.now()) / timedelta(days=1)))

    @property
    def expires_soon(self) -> bool:
        return self.is_active and self.expires_at - timezone.now() <= EXPIRY_WARNING

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])
