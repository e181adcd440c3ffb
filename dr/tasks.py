"""Scheduled entry points: the readiness checks and the expiry of unapproved DR requests."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="dr.tasks.check_readiness", ignore_result=True)
def check_readiness() -> int:
    from dr import readiness

    return readiness.check_all()


@shared_task(name="dr.tasks.expire_approvals", ignore_result=True)
def expire_approvals() -> int:
    from dr import services

    return services.expire_approvals()
