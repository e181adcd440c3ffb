"""Two Celery worker processes on one queue: the per-environment lock holds across workers (runs
on one environment never overlap, a waiting run is started by the holder's finish) while runs on
different environments proceed in parallel."""

import json

import pytest

from opsconsole.runs.models import EnvironmentLock, Run, Status
from opsconsole.runs.services import launch
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SLOW = {"lines": 5, "delay_ms": 300}  # about 1.5 s per run


def overlap(a: Run, b: Run) -> bool:
    return a.started_at < b.finished_at and b.started_at < a.finished_at


def all_ended(runs: list[Run]) -> bool:
    for run in runs:
        run.refresh_from_db()
    return all(run.is_terminal for run in runs)


def test_two_workers_never_overlap_runs_on_one_environment_but_run_environments_in_parallel(
    users, staging, production, settings, processes, clean_queues
):
    from opsconsole.celery import app

    settings.OPSCONSOLE_QUEUE = "celery"
    workers = [processes.celery_worker("w1"), processes.celery_worker("w2")]
    wait_for(lambda: len(app.control.ping(timeout=0.5)) == 2, 60, "both workers to answer")

    admin = users["admin"]
    first = launch("maintenance.selftest", principal=admin, environment=staging, params=SLOW)
    second = launch("maintenance.selftest", principal=admin, environment=staging, params=SLOW)
    other = launch("maintenance.selftest", principal=admin, environment=production, params=SLOW)
    third = launch("maintenance.selftest", principal=admin, environment=staging, params=SLOW)
    runs = [first, second, other, third]

    wait_for(lambda: all_ended(runs), 90, "all four runs to end", interval=0.5)
    assert [run.status for run in runs] == [Status.SUCCEEDED] * 4, [(run.pk, run.status, run.error) for run in runs]

    # One environment: one run at a time. (Not necessarily in request order: a waiting run's own
    # queue message may reach a worker just as the lock frees, before the oldest waiter's.)
    on_staging = sorted([first, second, third], key=lambda run: run.started_at)
    for earlier, later in zip(on_staging, on_staging[1:], strict=False):
        assert earlier.finished_at <= later.started_at, f"runs #{earlier.pk} and #{later.pk} overlapped on staging"

    # At least one run found staging locked, stayed queued, and was started when the lock came free.
    waited = [
        run
        for run in on_staging
        if run.events.filter(message__startswith="Waiting: the environment is locked").exists()
    ]
    assert waited

    # Another environment: not held up by staging's lock, so it ran alongside, on the other worker.
    alongside = [run for run in on_staging if overlap(run, other)]
    assert alongside, "the production run did not overlap any staging run"
    assert all(run.worker != other.worker for run in alongside)
    assert len({run.worker for run in runs}) == 2, "both workers executed runs"
    assert not EnvironmentLock.objects.exists()

    # The workers log JSON lines (LOG_FORMAT defaults to json outside the sandbox) naming the run.
    records = [
        json.loads(line)
        for worker in workers
        for line in worker.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    for run in runs:
        lines = [r["message"] for r in records if r["run_id"] == run.pk and r["logger"].startswith("opsconsole.jobs")]
        assert "self-test line 5 of 5" in lines, f"no JSON log line for run #{run.pk}"
