"""A run's heartbeats ride out a real PostgreSQL restart: while the server is down the heartbeat
thread misses beats, once it is back the thread beats again, the reaper leaves alone the run that
kept going, and the run ends succeeded. (The thread used to die at its first error, and the
reaper later ended a run that was still going.)

The run executes on a thread of this process, as in a worker, against the private cluster. Its job
waits on the outside world, as a deploy waits on ECS, and touches no database meanwhile: the
restart meets its heartbeats, not the job."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from opsconsole.runs import runner
from opsconsole.runs.models import Run, Status
from opsconsole.runs.reaper import reap
from opsconsole.runs.registry import REGISTRY, EnvironmentUse, RunKind
from tests.faults.conftest import LOST_AFTER_SECONDS
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

KIND = "faults.waits_on_the_outside_world"


def heartbeat_at(run: Run):
    return Run.objects.filter(pk=run.pk).values_list("heartbeat_at", flat=True).get()


def test_heartbeats_resume_after_a_postgres_restart_and_the_run_succeeds(private, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger=runner.__name__)
    answered = threading.Event()

    def waits_on_the_outside_world(ctx) -> dict:
        ctx.log.info("Waiting for the outside world.")
        assert answered.wait(120), "the outside world never answered"
        ctx.log.info("The outside world answered.")
        return {"answered": True}

    kind = RunKind(KIND, "Waits on the outside world", waits_on_the_outside_world, environment=EnvironmentUse.NONE)
    monkeypatch.setitem(REGISTRY, KIND, kind)
    run = Run.objects.create(kind=KIND, status=Status.QUEUED, requested_by_name="faults")
    outcome: list[object] = []

    def work() -> None:
        try:
            outcome.append(runner.execute(run.pk))
        except BaseException as exc:
            outcome.append(exc)
        finally:
            connection.close()

    worker = threading.Thread(target=work, name=f"run-{run.pk}")
    worker.start()
    try:
        wait_for(lambda: run.events.filter(message="Waiting for the outside world.").exists(), 30, "the job")
        claimed = heartbeat_at(run)
        wait_for(lambda: heartbeat_at(run) > claimed, 30, "a heartbeat before the restart")

        missed = f"heartbeat for run {run.pk} missed"
        with private.postgres_down():
            wait_for(lambda: any(r.getMessage().startswith(missed) for r in caplog.records), 30, "a missed beat")
        back = timezone.now()

        wait_for(lambda: heartbeat_at(run) > back, 30, "heartbeats to resume after the restart")
        # Past the time after which the reaper ends a silent run, this one still beats: it is left alone.
        silent_for_too_long = back + timedelta(seconds=LOST_AFTER_SECONDS)
        wait_for(lambda: heartbeat_at(run) > silent_for_too_long, 30, "heartbeats to carry on")
        assert run.pk not in reap()["reaped"]
        assert Run.objects.get(pk=run.pk).status == Status.RUNNING
    finally:
        answered.set()
        worker.join(timeout=60)

    assert outcome == [Status.SUCCEEDED], outcome
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED and run.result == {"answered": True}, (run.status, run.error)
    messages = list(run.events.order_by("seq").values_list("message", flat=True))
    assert messages[1:] == ["Waiting for the outside world.", "The outside world answered.", "Succeeded."], messages
