"""The one seam between "a run was created" and "a worker executes it".

OPSCONSOLE_QUEUE picks the backend: `celery` (Redis broker, or kombu's filesystem transport in
the sandbox), `rq` (django-rq) or `inline` (executes in this process, for the CLI and tests).
The message is the run id and nothing else. Other work that goes through the queue (an app's
deliveries, say) uses `enqueue()`, the same switch for any task whose message is one id.

A run that cannot be queued is ended here, with what the runs' models and the audit log offer:
this module imports nothing above it (services, the reaper, the runner) at load time; only
dispatch() reaches the Celery task and, inline, the runner, when it is called.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from opsconsole.audit.log import record
from opsconsole.audit.models import Outcome
from opsconsole.runs.context import append_event
from opsconsole.runs.models import IllegalTransition, Level, Run, Status

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
        Run.objects.filter(pk=run_id, status=Status.QUEUED).update(dispatched_at=timezone.now())
        dispatch(run_id)
    except Exception as exc:
        if backend() == "inline":
            raise
        logger.exception("could not enqueue run %s", run_id)
        fail_to_enqueue(run_id, f"Could not be queued: the job queue is unreachable ({type(exc).__name__}).")


def fail_to_enqueue(run_id: int, reason: str) -> None:
    run = Run.objects.get(pk=run_id)
    try:
        run.transition(Status.ERRORED, error=reason)
    except IllegalTransition:
        return  # a worker got the message after all
    append_event(run, reason, Level.ERROR)
    record(
        f"{run.kind}.errored",
        target=f"run:{run.pk}",
        environment=run.environment.name if run.environment_id else "",
        details={"run": run.pk, "error": reason},
        outcome=Outcome.FAILURE,
    )


def enqueue(
    task: str, object_id: int, *, rq_function: str, inline: Callable[[int, float], object], delay: float = 0
) -> None:
    """Hand `object_id` to a worker, `delay` seconds from now, through the configured queue: the
    Celery task named `task`, or the function at the dotted path `rq_function` on RQ's default
    queue (whose worker runs with its scheduler, for the delay). With `inline` there is no worker:
    `inline(object_id, delay)` does the work in this process. Raises when the broker refuses."""
    if backend() == "celery":
        from opsconsole.celery import app

        app.send_task(task, args=[object_id], countdown=delay or None, retry=False)
    elif backend() == "rq":
        import django_rq

        queue = django_rq.get_queue("default")
        if delay:
            queue.enqueue_in(timedelta(seconds=delay), rq_function, object_id)
        else:
            queue.enqueue(rq_function, object_id)
    else:
        inline(object_id, delay)
