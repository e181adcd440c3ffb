"""Scheduled work fires with either queue backend: Celery beat (database scheduler) and RQ's
cron scheduler both run the reaper from the same django-celery-beat rows."""

from datetime import timedelta

import pytest
from django.utils import timezone

from opsconsole.runs.models import Run, Status
from tests.integration.conftest import MANAGE, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def abandoned_run(environment) -> Run:
    """A run whose worker vanished a minute ago without a word."""
    stale = timezone.now() - timedelta(minutes=1)
    return Run.objects.create(
        kind="maintenance.selftest",
        environment=environment,
        status=Status.RUNNING,
        started_at=stale,
        heartbeat_at=stale,
        worker="gone-host:4242",
        params={"lines": 1},
    )


def reaped(run: Run) -> bool:
    run.refresh_from_db()
    return run.status == Status.ERRORED


def test_celery_beat_fires_the_reaper_on_its_schedule(staging, processes, clean_queues):
    run = abandoned_run(staging)
    processes.celery_worker(REAPER_INTERVAL_SECONDS="1")
    processes.start("beat", MANAGE + ["run_scheduler"], "celery", REAPER_INTERVAL_SECONDS="1")
    wait_for(lambda: reaped(run), 60, "beat to fire the reaper", interval=0.5)
    assert run.error.startswith("worker lost: gone-host:4242")


def test_the_rq_scheduler_fires_the_reaper_on_its_schedule(staging, processes, clean_queues):
    run = abandoned_run(staging)
    processes.start("rq-worker", MANAGE + ["run_worker"], "rq", REAPER_INTERVAL_SECONDS="1")
    processes.start("rq-cron", MANAGE + ["run_scheduler"], "rq", REAPER_INTERVAL_SECONDS="1")
    wait_for(lambda: reaped(run), 60, "the RQ cron scheduler to fire the reaper", interval=0.5)
    assert run.error.startswith("worker lost: gone-host:4242")
