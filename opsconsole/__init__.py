"""The ops console project package: settings, URLs, the Celery app and the shared core
(runs, audit, access, AWS client factory)."""

from opsconsole.celery import app as celery_app

__all__ = ["celery_app"]
