"""AuditEvent: one row per state change, chained by SHA-256 so an edit shows.

Rows are appended through `opsconsole.audit.record()` only. A migration installs database
triggers that refuse UPDATE and DELETE; `verify_audit` recomputes the chain.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models

from opsconsole.audit.chain import CHAINED_FIELDS, GENESIS_HASH, canonical_json

__all__ = ["CHAINED_FIELDS", "GENESIS_HASH", "AuditEvent", "Outcome", "canonical_json"]


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    DENIED = "denied", "Denied"


class AuditEvent(models.Model):
    seq = models.BigIntegerField(unique=True)
    at = models.DateTimeField(db_index=True)
    # PROTECT, not SET_NULL: the row is append-only (and actor_id is hashed), so a user who
    # appears in the log is deactivated rather than deleted.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=100)
    target = models.CharField(max_length=200, blank=True)
    environment = models.CharField(max_length=100, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["action", "-seq"]),
            models.Index(fields=["actor_name", "-seq"]),
            models.Index(fields=["environment", "-seq"]),
            # The page filters actions by prefix (LIKE 'x%'): this index serves a rare prefix,
            # which the seq index could only find by reading the whole table.
            models.Index(fields=["action"], name="audit_action_prefix_idx", opclasses=["varchar_pattern_ops"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_name or 'system'}"

    def canonical(self) -> bytes:
        """The bytes the hash covers: every field but the hash itself, in a fixed order."""
        body = {name: getattr(self, name) for name in CHAINED_FIELDS}
        body["at"] = self.at.isoformat(timespec="microseconds")
        return canonical_json(body)

    def compute_hash(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()
