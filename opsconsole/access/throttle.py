"""Login throttling, counted from the audit log's failed-login events (no extra store)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from opsconsole.audit.models import AuditEvent


def login_locked_out(username: str, ip: str | None) -> bool:
    """Too many recent failures for this username, or from this address?"""
    since = timezone.now() - timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
    recent = AuditEvent.objects.filter(action="auth.login.failed", at__gte=since)
    limit = settings.LOGIN_FAILURES_ALLOWED
    if recent.filter(details__username=username).count() >= limit:
        return True
    # An address may try several accounts, but not without bound.
    return ip is not None and recent.filter(ip=ip).count() >= limit * 4


def sudo_locked_out(username: str) -> bool:
    """Too many wrong passwords at the re-authentication prompt (a stolen session guessing)?"""
    since = timezone.now() - timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
    failures = AuditEvent.objects.filter(action="auth.sudo.failed", at__gte=since, target=f"user:{username}")
    return failures.count() >= settings.LOGIN_FAILURES_ALLOWED
