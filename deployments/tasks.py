"""Periodic work of the deployments app (scheduled through opsconsole.runs.schedules)."""

from celery import shared_task

from deployments import services


@shared_task(name="deployments.tasks.expire_approvals", ignore_result=True)
def expire_approvals() -> int:
    return services.expire_approvals()
