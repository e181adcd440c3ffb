"""Logins, logouts and failed logins go to the audit log."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from opsconsole.audit.log import record
from opsconsole.audit.models import Outcome


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs):
    record("auth.login", actor=user, target=f"user:{user.username}", request=request)


@receiver(user_logged_out)
def audit_logout(sender, request, user, **kwargs):
    if user is not None:
        record("auth.logout", actor=user, target=f"user:{user.username}", request=request)


@receiver(user_login_failed)
def audit_login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    record(
        "auth.login.failed",
        target=f"user:{username}",
        details={"username": username},
        outcome=Outcome.FAILURE,
        request=request,
    )
