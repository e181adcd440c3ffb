"""Periodic work of the infrastructure app (scheduled through opsconsole.runs.schedules)."""

from celery import shared_task

from infrastructure import services


@shared_task(name="infrastructure.tasks.check_drift", ignore_result=True)
def check_drift() -> int:
    services.expire_applies()
    return len(services.launch_drift_checks())
