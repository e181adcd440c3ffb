"""The Celery application. Tasks carry only a run id; see opsconsole/runs/dispatch.py."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")

app = Celery("opsconsole")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()  # tasks.py of every installed app


@signals.setup_logging.connect
def use_console_logging(**kwargs) -> None:
    """Workers and beat log through settings.LOGGING (JSON lines with run ids, opsconsole/logs.py)
    instead of Celery replacing the root logger's handlers with its own text format."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
