"""The reaper, run on a schedule: ends runs whose worker stopped heartbeating, frees their
locks, and re-sends queued runs whose message may have been lost."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from opsconsole.runs.context import append_event
from opsconsole.runs.dispatch import dispatch_safely
from opsconsole.runs.models import EXECUTING, EnvironmentLock, IllegalTransition, Level, Run, Status
from opsconsole.runs.registry import LOST_HANDLERS
from opsconsole.runs.runner import audit_outcome, dispatch_next_waiting

logger = logging.getLogger(__name__)


def reap() -> dict:
    now = timezone.now()
    lost_before = now - timedelta(seconds=settings.RUN_LOST_AFTER_SECONDS)
    reaped = []
    for run in Run.objects.filter(status__in=EXECUTING, heartbeat_at__lt=lost_before).select_related("environment"):
        reason = (
            f"worker lost: {run.worker or 'unknown worker'} stopped heartbeating at {run.heartbeat_at:%H:%M:%S} UTC"
        )
        with transaction.atomic():
            try:
                run.transition(Status.ERRORED, error=reason)
            except IllegalTransition:
                continue
            append_event(run, f"Errored ({reason}). The environment lock was released.", Level.ERROR)
            audit_outcome(run, {"reason": "worker_lost"})
        reaped.append(run.pk)
        # Look at what the worker left before the next waiting run may change it (a deploy
        # waiting on this environment would otherwise update the very service being asked about).
        try:
            report_what_was_left(run)
        finally:
            dispatch_next_waiting(run.environment_id)

    # Locks left by runs that ended some other way (defensive: transition() frees them).
    stale = EnvironmentLock.objects.filter(run__isnull=False).exclude(run__status__in=EXECUTING)
    freed = list(stale.values_list("environment_id", flat=True))
    stale.delete()
    for environment_id in freed:
        dispatch_next_waiting(environment_id)

    # Queued runs whose message went missing (a broker that lost its data, say). Claiming is
    # conditional, so a duplicate message is harmless; still, a run is re-sent at most once every
    # RUN_RESEND_AFTER_SECONDS, so a long but healthy queue does not fill with copies. Runs waiting
    # on a held lock are left alone: the holder's finish dispatches them.
    resend_before = now - timedelta(seconds=settings.RUN_RESEND_AFTER_SECONDS)
    resent = []
    locked_envs = EnvironmentLock.objects.values_list("environment_id", flat=True)
    for run_id in (
        Run.objects.filter(status=Status.QUEUED, created_at__lt=lost_before)
        .filter(Q(dispatched_at__lt=resend_before) | Q(dispatched_at=None))
        .exclude(environment_id__in=locked_envs)
        .values_list("pk", flat=True)[:100]
    ):
        dispatch_safely(run_id)
        resent.append(run_id)
    return {"reaped": reaped, "freed_locks": freed, "resent": resent}


def report_what_was_left(run: Run) -> None:
    """A worker that died mid-run cannot say how far it got; the kind's handler looks (a deploy asks
    ECS which task definition the service runs) and the run's log and result say so. Outside the
    transaction: it may call AWS."""
    handler = LOST_HANDLERS.get(run.kind)
    if handler is None:
        return
    try:
        message, facts = handler(run)
    except Exception as exc:
        logger.exception("could not tell what run %s left behind", run.pk)
        message, facts = f"Could not tell what the lost worker left behind ({type(exc).__name__}: {exc}).", {}
    append_event(run, message, Level.WARNING, facts)
    if facts:
        Run.objects.filter(pk=run.pk).update(result={**run.result, "worker_lost": facts})
