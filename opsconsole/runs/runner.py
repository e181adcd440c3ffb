"""The runner: claim -> lock -> heartbeat -> job -> finish, for every kind of run.

A queue message carries only the run id. `execute()` claims the run with a conditional UPDATE
(QUEUED -> RUNNING), so a message delivered twice executes once. Expected failures (RunFailed)
end `failed`; anything else ends `errored` with the traceback as the last event.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from opsconsole import aws
from opsconsole.audit.log import record
from opsconsole.audit.models import Outcome
from opsconsole.runs.context import Canceled, EventWriter, RunContext, RunFailed, append_event, capture
from opsconsole.runs.dispatch import dispatch_safely
from opsconsole.runs.models import EXECUTING, EnvironmentLock, IllegalTransition, Level, LockHeld, Run, Status
from opsconsole.runs.reconnect import is_connection_error, recover_connection, wait_for_database
from opsconsole.runs.registry import get_kind
from opsconsole.runs.signals import run_status_changed

logger = logging.getLogger(__name__)

# How long a worker whose job lost the database waits for it to come back to record the outcome.
# Past that, the run stays running without heartbeats and the reaper ends it once the database is back.
DATABASE_WAIT_SECONDS = 120


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def execute(run_id: int) -> str:
    """Execute a queued run. Returns what happened, for logs and tests."""
    run = Run.objects.filter(pk=run_id).select_related("environment").first()
    if run is None or run.status != Status.QUEUED:
        return "not-claimed"
    if run.cancel_requested:
        _cancel_before_start(run)
        return "canceled"
    kind = get_kind(run.kind)
    now = timezone.now()
    held = None
    with transaction.atomic():
        claimed = Run.objects.filter(pk=run_id, status=Status.QUEUED).update(
            status=Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker_name()
        )
        if not claimed:
            return "not-claimed"
        if kind.locks_environment and run.environment_id:
            try:
                EnvironmentLock.acquire(run.environment, run=run)
            except LockHeld as exc:
                held = exc
                transaction.set_rollback(True)  # stay queued; the lock holder's finish re-dispatches
    if held is not None:
        _note_waiting(run, held)
        return "waiting"
    run.refresh_from_db()
    writer = EventWriter(run)
    writer.write(f"Started on {run.worker}.", data={"worker": run.worker})
    run_status_changed.send_robust(sender=Run, run=run, previous=Status.QUEUED, status=Status.RUNNING)
    with _heartbeat(run.pk), capture(writer), aws.role_session(aws.run_session_name(run.pk)):
        _run_job(run, kind, writer)
    dispatch_next_waiting(run.environment_id)
    return run.status


def _run_job(run: Run, kind, writer: EventWriter) -> None:
    context = RunContext(run, writer)
    try:
        result = kind.func(context) or {}
    except Canceled:
        _finish(run, writer, Status.CANCELED, "Canceled at the operator's request.", Level.WARNING)
    except RunFailed as failure:
        _finish(run, writer, Status.FAILED, str(failure), Level.ERROR, error=writer.redact(str(failure)))
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        if is_connection_error(exc):
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            message = f"the database connection was lost ({type(exc).__name__}: {first_line})"
        tb = writer.redact(traceback.format_exc())
        _with_database(lambda: writer.write(tb, Level.ERROR))
        _with_database(
            lambda: _finish(
                run, writer, Status.ERRORED, f"Errored: {message}", Level.ERROR, error=writer.redact(message)
            )
        )
    else:
        _with_database(lambda: _finish(run, writer, Status.SUCCEEDED, "Succeeded.", Level.INFO, result=result))


def _with_database(write) -> None:
    """Record something at the end of a run; if the database went away (a restart, a failover),
    wait for it to come back and try once more. Nothing half-written survives a failed attempt:
    each attempt is its own transaction."""
    try:
        write()
    except DatabaseError as exc:
        if not is_connection_error(exc):
            raise
        logger.warning("the database went away while recording a run's end; waiting for it: %s", exc)
        if not wait_for_database(DATABASE_WAIT_SECONDS):
            raise
        write()


def _finish(run: Run, writer: EventWriter, status: str, message: str, level: str, **fields) -> None:
    # Decide from the stored status: a failed earlier attempt (the database went away after
    # transition()) leaves the in-memory one changed although its transaction was rolled back.
    stored = Run.objects.filter(pk=run.pk).values_list("status", flat=True).first()
    if stored is not None:
        run.status = stored
    if run.status == Status.ROLLING_BACK and status == Status.SUCCEEDED:
        # A job that switched to rolling back and then completed has rolled back, not succeeded.
        status, message, level = Status.ROLLED_BACK, "Rolled back.", Level.WARNING
    try:
        # One transaction: whoever sees the run ended also sees its last line and its audit event.
        with transaction.atomic():
            run.transition(status, **fields)
            writer.write(message, level)
            audit_outcome(run)
    except IllegalTransition as exc:
        # The reaper gave up on us (heartbeats lost) and already ended the run; say so and stop.
        writer.write(f"Could not record the outcome {status}: {exc}", Level.ERROR)


def audit_outcome(run: Run, details: dict | None = None) -> None:
    outcome = Outcome.SUCCESS if run.status == Status.SUCCEEDED else Outcome.FAILURE
    record(
        f"{run.kind}.{run.status}",
        actor=run.requested_by,
        actor_name=run.requested_by_name,
        target=f"run:{run.pk}",
        environment=run.environment.name if run.environment_id else "",
        details={"run": run.pk, "status": run.status, "error": run.error, **(details or {})},
        outcome=outcome,
    )


def _cancel_before_start(run: Run) -> None:
    try:
        run.transition(Status.CANCELED)
    except IllegalTransition:
        return
    append_event(run, "Canceled before it started.", Level.WARNING)
    audit_outcome(run)


def _note_waiting(run: Run, held: LockHeld) -> None:
    holder = held.lock.describe() if held.lock else "another run"
    message = f"Waiting: the environment is locked by {holder}."
    last = run.events.order_by("-seq").values_list("message", flat=True).first()
    if last != message:
        append_event(run, message, Level.INFO)


def dispatch_next_waiting(environment_id: int | None) -> None:
    """When a lock is freed, start the oldest run that was waiting for it."""
    if environment_id is None:
        return
    waiting = Run.objects.filter(environment_id=environment_id, status=Status.QUEUED).order_by("id").first()
    if waiting is not None:
        transaction.on_commit(lambda: dispatch_safely(waiting.pk))


@contextmanager
def _heartbeat(run_id: int):
    """Touch heartbeat_at every RUN_HEARTBEAT_SECONDS from a thread with its own connection."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.RUN_HEARTBEAT_SECONDS):
                try:
                    Run.objects.filter(pk=run_id, status__in=EXECUTING).update(heartbeat_at=timezone.now())
                except DatabaseError as exc:
                    # A restart of the database must not stop the heartbeats for good: the reaper
                    # would then end a run that is still going. Skip this beat, reconnect next time.
                    if not is_connection_error(exc):
                        raise
                    logger.warning("heartbeat for run %s missed: %s", run_id, exc)
                    recover_connection()
        except Exception:
            logger.exception("heartbeat for run %s stopped", run_id)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=settings.RUN_HEARTBEAT_SECONDS + 5)
        close_old_connections()


__all__ = ["execute", "RunFailed", "Canceled", "audit_outcome", "dispatch_next_waiting"]
