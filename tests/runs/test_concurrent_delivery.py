"""One run delivered to several workers at the same moment (a broker redelivering, the reaper
re-dispatching a run a slow worker is about to claim) executes once: the runner claims it with one
conditional UPDATE (queued -> running), and only the delivery whose UPDATE changed the row runs the
job; every other one finds nothing to claim.

Real threads, each with its own PostgreSQL connection (closed when the thread ends), and a barrier:
either at the call to runner.execute(), or just before the claim, once every delivery has read the
run and found it queued (the runner looks before it claims)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from opsconsole.audit.models import AuditEvent
from opsconsole.runs import runner
from opsconsole.runs.models import Run, Status
from opsconsole.runs.registry import REGISTRY, EnvironmentUse, RunKind

pytestmark = pytest.mark.django_db(transaction=True)

DELIVERIES = 8
KIND = "test.counted"


@pytest.fixture
def job_bodies(monkeypatch) -> list[str]:
    """A run kind that records each execution of its body (the thread that ran it)."""
    ran: list[str] = []
    lock = threading.Lock()

    def body(ctx) -> dict:
        with lock:
            ran.append(threading.current_thread().name)
        ctx.log.info("the job body ran")
        return {"ran": True}

    monkeypatch.setitem(REGISTRY, KIND, RunKind(KIND, "Counted", body, environment=EnvironmentUse.NONE))
    return ran


@pytest.fixture
def queued_run(job_bodies) -> Run:
    """A queued run, as launch() leaves it for the queue: the message carries only its id."""
    return Run.objects.create(kind=KIND, requested_by_name="test")


def deliver_at_once(run_id: int, barrier: threading.Barrier, *, wait_before_execute: bool) -> list:
    """runner.execute(run_id) from DELIVERIES threads; returns what each returned (or raised)."""
    outcomes: list = [None] * DELIVERIES

    def worker(index: int) -> None:
        try:
            if wait_before_execute:
                barrier.wait()
            outcomes[index] = runner.execute(run_id)
        except Exception as exc:  # noqa: BLE001 (an exception is an outcome the test reports)
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,), name=f"delivery-{i}") for i in range(DELIVERIES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a delivery did not finish within 60 s"
    return outcomes


def assert_executed_once(run: Run, outcomes: list, job_bodies: list[str]) -> None:
    assert len(job_bodies) == 1, f"the job body ran {len(job_bodies)} times: {job_bodies}"
    assert sorted(outcomes, key=str) == sorted([Status.SUCCEEDED] + ["not-claimed"] * (DELIVERIES - 1), key=str)
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED and run.result == {"ran": True}
    assert run.events.filter(message__startswith="Started on ").count() == 1
    assert run.events.filter(message="the job body ran").count() == 1
    assert not run.events.filter(message__startswith="Could not record the outcome").exists()
    assert AuditEvent.objects.filter(action=f"{KIND}.succeeded", target=f"run:{run.pk}").count() == 1


def test_the_same_run_delivered_to_eight_workers_at_once_runs_its_job_once(queued_run, job_bodies):
    barrier = threading.Barrier(DELIVERIES, timeout=30)
    outcomes = deliver_at_once(queued_run.pk, barrier, wait_before_execute=True)
    assert_executed_once(queued_run, outcomes, job_bodies)


def test_deliveries_that_all_found_the_run_queued_still_run_its_job_once(queued_run, job_bodies, monkeypatch):
    # Every delivery has read the run as queued before any of them claims it: only the claim's
    # own condition (status = queued in the UPDATE) can tell them apart.
    barrier = threading.Barrier(DELIVERIES, timeout=30)
    get_kind = runner.get_kind

    def read_then_wait(name: str):
        barrier.wait()
        return get_kind(name)

    monkeypatch.setattr(runner, "get_kind", read_then_wait)
    outcomes = deliver_at_once(queued_run.pk, barrier, wait_before_execute=False)
    assert_executed_once(queued_run, outcomes, job_bodies)
