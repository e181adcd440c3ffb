"""A real RQ worker (burst mode) executes runs through the same dispatch seam."""

import pytest

from opsconsole.runs.models import Status
from opsconsole.runs.services import launch
from tests.integration.conftest import MANAGE

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_an_rq_worker_executes_a_run_end_to_end(users, settings, processes, clean_queues):
    import django_rq

    settings.OPSCONSOLE_QUEUE = "rq"
    run = launch("maintenance.selftest", principal=users["admin"], params={"lines": 3, "delay_ms": 0})
    assert run.status == Status.QUEUED
    assert django_rq.get_queue("default").count == 1

    worker = processes.start("rq", MANAGE + ["rqworker", "default", "--burst"], "rq")
    assert worker.wait(timeout=60) == 0, worker.log_path.read_text()

    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    assert run.events.filter(message__startswith="self-test line").count() == 3
    assert django_rq.get_queue("default").count == 0


def test_the_same_rq_message_delivered_twice_executes_once(users, settings, processes, clean_queues):
    import django_rq

    settings.OPSCONSOLE_QUEUE = "rq"
    run = launch("maintenance.selftest", principal=users["admin"], params={"lines": 2, "delay_ms": 0})
    django_rq.get_queue("default").enqueue("opsconsole.runs.tasks.execute_run_rq", run.pk)  # a duplicate

    worker = processes.start("rq", MANAGE + ["rqworker", "default", "--burst"], "rq")
    assert worker.wait(timeout=60) == 0, worker.log_path.read_text()

    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED
    assert run.events.filter(message__startswith="Started on").count() == 1
    assert run.events.filter(message__startswith="self-test line").count() == 2
