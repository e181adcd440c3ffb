"""PostgreSQL restarts under a running job: the run ends in a clear state, and the console and the
worker carry on with the restarted server without being restarted themselves."""

from __future__ import annotations

import pytest

from opsconsole.environments.models import Environment
from opsconsole.runs.models import EnvironmentLock, Run, Status
from opsconsole.runs.services import launch
from tests.faults.conftest import logged_since
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

# What the worker logs once its job has met the stopped server (runs/runner.py).
WAITING = "the database went away while recording a run's end; waiting for it"


def ended(run: Run) -> bool:
    run.refresh_from_db()
    return run.is_terminal


def test_a_run_caught_by_a_postgres_restart_ends_errored_and_the_console_recovers(private, operator):
    worker = private.worker()
    private.console()
    browser = private.browser(operator)
    assert private.get(browser, "/runs/")[0] == 200  # gunicorn now holds a persistent connection
    environment, _ = Environment.objects.get_or_create(name="faults-pg")
    run = launch(
        "maintenance.selftest", principal=operator, environment=environment, params={"lines": 4000, "delay_ms": 5}
    )
    wait_for(lambda: run.events.filter(message__startswith="self-test line 200 ").exists(), 60, "the run to start")

    mark = worker.log_path.stat().st_size
    with private.postgres_down():  # every session is terminated, as in a restart or failover
        # Down until the job has met it: it could not record its end and waits for the database.
        wait_for(lambda: WAITING in logged_since(worker, mark), 60, "the job to meet the stopped server")

    # The console's first request after the restart works: no restart of gunicorn needed.
    status, body = private.get(browser, f"/runs/{run.pk}/")
    assert status == 200, body[-2000:]

    wait_for(lambda: ended(run), 60, "the run to end")
    assert run.status == Status.ERRORED, (run.status, run.error)
    assert run.error.startswith("the database connection was lost (OperationalError: "), run.error
    messages = list(run.events.order_by("seq").values_list("message", flat=True))
    assert messages[-1] == f"Errored: {run.error}", messages[-5:]
    # Lines logged while the server was down are gone; the log says so where the gap is.
    gap = [m for m in messages if m.endswith("log line(s) could not be recorded: the database was unreachable.")]
    assert len(gap) == 1, messages[-10:]
    assert not EnvironmentLock.objects.filter(environment=environment).exists()

    # The same worker process takes the next run on the same environment.
    assert worker.poll() is None
    after = launch(
        "maintenance.selftest", principal=operator, environment=environment, params={"lines": 3, "delay_ms": 0}
    )
    wait_for(lambda: ended(after), 60, "the next run to end")
    assert after.status == Status.SUCCEEDED, after.error
    assert after.worker == run.worker
