"""Scheduled work. The schedule lives in django-celery-beat's tables (editable in the admin) and
fires with either queue backend: Celery beat reads it with its database scheduler; with RQ,
`run_scheduler` registers the same rows with RQ's cron scheduler."""

from __future__ import annotations

from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

REAPER_TASK = "opsconsole.runs.tasks.reap_runs"
FORGET_KEYS_TASK = "opsconsole.runs.tasks.forget_idempotency_keys"

# name -> (task path, a callable giving the interval in seconds). Apps add theirs in ready().
PERIODIC: dict[str, tuple[str, object]] = {
    "opsconsole: reap lost runs": (REAPER_TASK, lambda: settings.REAPER_INTERVAL_SECONDS),
    "opsconsole: forget idempotency keys older than a day": (FORGET_KEYS_TASK, lambda: 3600),
}


def register_periodic(name: str, task: str, seconds) -> None:
    PERIODIC[name] = (task, seconds)


def ensure_core_schedules() -> None:
    """Create (or correct) the console's own periodic tasks. Idempotent."""
    for name, (task, seconds) in PERIODIC.items():
        every, _ = IntervalSchedule.objects.get_or_create(every=seconds(), period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "interval": every, "crontab": None, "enabled": True}
        )


def crontab_expression(schedule) -> str:
    return " ".join(
        [schedule.minute, schedule.hour, schedule.day_of_month, schedule.month_of_year, schedule.day_of_week]
    )


def interval_seconds(schedule) -> int:
    multipliers = {"microseconds": 0, "seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
    return max(1, schedule.every * multipliers.get(schedule.period, 1))
