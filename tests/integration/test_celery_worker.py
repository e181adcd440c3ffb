"""A real Celery worker executes runs from Redis; a worker killed mid-run is reaped."""

import signal

import pytest

from opsconsole.runs.models import EnvironmentLock, Run, Status
from opsconsole.runs.reaper import reap
from opsconsole.runs.services import launch
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def ended(run: Run):
    run.refresh_from_db()
    return run.is_terminal


def test_a_celery_worker_executes_a_run_end_to_end(users, settings, processes, clean_queues):
    settings.OPSCONSOLE_QUEUE = "celery"
    worker = processes.celery_worker()
    run = launch("maintenance.selftest", principal=users["admin"], params={"lines": 3, "delay_ms": 0})
    assert run.status == Status.QUEUED
    wait_for(lambda: ended(run), 60, "the run to end")
    assert run.status == Status.SUCCEEDED, run.error
    assert run.worker.endswith(f":{run.worker.split(':')[1]}") and run.worker.split(":")[1].isdigit()
    assert worker.poll() is None
    lines = list(run.events.order_by("seq").values_list("message", flat=True))
    assert [line for line in lines if line.startswith("self-test")] == [f"self-test line {i} of 3" for i in (1, 2, 3)]


def test_a_worker_killed_mid_run_leaves_the_run_errored_and_the_lock_free(
    users, staging, settings, processes, clean_queues
):
    settings.OPSCONSOLE_QUEUE = "celery"
    worker = processes.celery_worker()
    run = launch(
        "maintenance.selftest", principal=users["admin"], environment=staging, params={"lines": 500, "delay_ms": 100}
    )
    wait_for(lambda: run.events.filter(message__startswith="self-test line 3 ").exists(), 60, "the run to start")
    assert EnvironmentLock.objects.filter(environment=staging, run=run).exists()

    processes.kill_group(worker, signal.SIGKILL)  # the worker and its pool child, no goodbye

    def reaped():
        reap()
        run.refresh_from_db()
        return run.status == Status.ERRORED

    # Heartbeats stop; after RUN_LOST_AFTER_SECONDS the reaper calls the worker lost.
    wait_for(reaped, settings.RUN_LOST_AFTER_SECONDS + 10, "the reaper to mark the run errored", interval=0.5)
    assert run.error.startswith("worker lost")
    assert not EnvironmentLock.objects.filter(environment=staging).exists()
    assert run.events.order_by("-seq").first().message.startswith("Errored (worker lost")

    # The environment is usable again: the next run on it goes through a fresh worker.
    processes.celery_worker("w2")
    after = launch(
        "maintenance.selftest", principal=users["admin"], environment=staging, params={"lines": 1, "delay_ms": 0}
    )
    wait_for(lambda: ended(after), 60, "the next run to end")
    assert after.status == Status.SUCCEEDED
