"""Start the scheduler for the configured queue: Celery beat (database scheduler) or RQ cron."""

from __future__ import annotations

import importlib
import json
import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_celery_beat.models import PeriodicTask

from opsconsole.runs.schedules import crontab_expression, ensure_core_schedules, interval_seconds


def _callable(path: str):
    module, _, name = path.rpartition(".")
    target = getattr(importlib.import_module(module), name)
    return getattr(target, "run", target)  # a Celery task's plain function, for RQ


class Command(BaseCommand):
    help = "Run the scheduler that fires periodic tasks (reaper, backups) on the configured queue."

    def handle(self, *args, **options):
        ensure_core_schedules()
        backend = settings.OPSCONSOLE_QUEUE
        if backend == "celery":
            argv = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "opsconsole",
                "beat",
                "-l",
                "INFO",
                "-S",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--pidfile=",
                f"--schedule={settings.VAR_DIR / 'celerybeat-schedule'}",
            ]
            os.execv(sys.executable, argv)
        if backend == "rq":
            self._run_rq_cron()
            return
        raise CommandError("OPSCONSOLE_QUEUE=inline has no scheduler; run the reaper with `manage.py reap_runs`.")

    def _run_rq_cron(self) -> None:
        import django_rq
        from rq.cron import CronScheduler

        scheduler = CronScheduler(connection=django_rq.get_connection("default"))
        for task in PeriodicTask.objects.filter(enabled=True).select_related("crontab", "interval"):
            func = _callable(task.task)
            call = {"args": tuple(json.loads(task.args or "[]")), "kwargs": json.loads(task.kwargs or "{}")}
            if task.crontab_id:
                scheduler.register(func, "default", cron=crontab_expression(task.crontab), name=task.name, **call)
            elif task.interval_id:
                scheduler.register(func, "default", interval=interval_seconds(task.interval), name=task.name, **call)
            self.stdout.write(f"scheduled {task.name} ({task.task})")
        scheduler.start()
