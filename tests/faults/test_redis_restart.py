"""Redis restarts with runs queued (it keeps nothing on disk, so every queued message is gone):
the reaper re-sends them, the worker reconnects by itself, and every run executes exactly once,
duplicate messages included."""

from __future__ import annotations

import pytest

from opsconsole.runs.dispatch import dispatch
from opsconsole.runs.models import Run, Status
from opsconsole.runs.reaper import reap
from opsconsole.runs.services import launch
from tests.faults.conftest import logged_since
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

# What a Celery worker logs when its broker goes away.
BROKER_LOST = "Connection to broker lost"


def ended(run: Run) -> bool:
    run.refresh_from_db()
    return run.is_terminal


def executions(run: Run) -> int:
    """How many times a worker started the run: each start writes "Started on <worker>."."""
    return run.events.filter(message__startswith="Started on ").count()


def selftest_lines(run: Run) -> int:
    return run.events.filter(message__startswith="self-test line ").count()


def test_runs_queued_when_redis_restarts_all_run_exactly_once(private, operator):
    from opsconsole.celery import app

    worker = private.worker()
    long = launch("maintenance.selftest", principal=operator, params={"lines": 40, "delay_ms": 100})
    queued = [launch("maintenance.selftest", principal=operator, params={"lines": 3, "delay_ms": 0}) for _ in range(5)]
    wait_for(lambda: long.events.filter(message__startswith="self-test line 5 ").exists(), 60, "the long run")
    with app.connection_for_write() as conn:
        assert conn.default_channel.client.llen("celery") == len(queued)  # waiting behind the long run

    mark = worker.log_path.stat().st_size
    private.services.redis.stop()  # SIGKILL: the queued messages and the long run's unacked one are gone
    try:
        # Down until the worker has noticed.
        wait_for(lambda: BROKER_LOST in logged_since(worker, mark), 60, "the worker to lose the broker")
    finally:
        private.services.redis.start()

    wait_for(lambda: ended(long), 60, "the long run to end")
    assert long.status == Status.SUCCEEDED, long.error
    for run in queued:
        run.refresh_from_db()
        assert run.status == Status.QUEUED  # nothing will run them until they are re-sent

    def all_ended():
        reap()  # what Celery beat runs every REAPER_INTERVAL_SECONDS
        return all(ended(run) for run in queued)

    wait_for(all_ended, 60, "the reaper to re-send the lost runs and the worker to run them", interval=1)
    for run in [long, *queued]:
        run.refresh_from_db()
        assert run.status == Status.SUCCEEDED, (run.pk, run.status, run.error)
        assert executions(run) == 1, run.pk
    assert [selftest_lines(run) for run in queued] == [3] * len(queued)
    assert selftest_lines(long) == 40

    # Duplicate deliveries (a message re-sent although the first one arrived) do not run anything twice.
    for run in [long, *queued]:
        dispatch(run.pk)
    last = launch("maintenance.selftest", principal=operator, params={"lines": 1, "delay_ms": 0})
    wait_for(lambda: ended(last), 60, "a run queued behind the duplicates")  # one worker slot: FIFO
    assert last.status == Status.SUCCEEDED
    for run in [long, *queued]:
        assert executions(run) == 1, run.pk
        assert run.events.order_by("-seq").first().message == "Succeeded."
    assert worker.poll() is None
