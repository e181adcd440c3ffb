"""The one seam between "a run was created" and "a worker executes it".

OPSCONSOLE_QUEUE picks the backend: `celery` (Redis broker, or kombu's filesystem transport in
the sandbox), `rq` (django-rq) or `inline` (executes in this process, for the CLI and tests).
The message is the run id and nothing else.
"""

from __future__ import annotations

import logging

from django.conf import settings

logger = logging.getLogger(__name__)


class QueueUnavailable(Exception):
    """The broker cannot be reached: nothing can be queued right now."""


def backend() -> str:
    return settings.OPSCONSOLE_QUEUE


def check_queue() -> None:
    """Raise QueueUnavailable, with a message for the user, when the broker is unreachable."""
    try:
        if backend() == "celery":
            from opsconsole.celery import app

            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
        elif backend() == "rq":
            import django_rq

            django_rq.get_connection("default").ping()
    except Exception as exc:
        raise QueueUnavailable(
            f"The job queue ({backend()}) is unreachable, so nothing was started: {type(exc).__name__}."
        ) from exc


def dispatch(run_id: int) -> None:
    if backend() == "celery":
        from opsconsole.runs.tasks import execute_run

        execute_run.apply_async(args=[run_id], retry=False)
    elif backend() == "rq":
        import django_rq

        django_rq.get_queue("default").enqueue("opsconsole.runs.tasks.execute_run_rq", run_id)
    else:
        from opsconsole.runs.runner import execute

        execute(run_id)


def dispatch_safely(run_id: int) -> None:
    """Dispatch after commit. If the broker went away between the check and now, end the run
    `errored` with the reason instead of leaving it queued with no message behind it."""
    try:
        from django.utils import timezone

        from opsconsole.runs.models import Run, Status

        Run.objects.filter(pk=run_id, status=Status.QUEUED).update(dispatched_at=timezone.now())
        dispatch(run_id)
    except Exception as exc:
        if backend() == "inline":
            raise
        logger.exception("could not enqueue run %s", run_id)
        from opsconsole.runs.services import fail_to_enqueue

        fail_to_enqueue(run_id, f"Could not be queued: the job queue is unreachable ({type(exc).__name__}).")
