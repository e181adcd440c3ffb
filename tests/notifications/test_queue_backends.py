"""Deliveries go through the runs' queue seam: a real Celery worker sends them (retrying on a
500 with a countdown, not by sleeping in the caller) and a real RQ worker does too; notify()
itself only records and enqueues."""

import pytest

from notifications.delivery import notify
from notifications.models import Delivery, DeliveryStatus
from tests.integration.conftest import MANAGE, wait_for
from tests.notifications.conftest import SLACK_PATH, SLACK_VAR, slack_channel

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_celery_worker_sends_the_delivery_and_retries_it(
    staging,
    settings,
    receiver,
    processes,
    clean_queues,
):
    settings.OPSCONSOLE_QUEUE = "celery"
    processes.celery_worker(**{SLACK_VAR: receiver.url(SLACK_PATH), "NOTIFY_BACKOFF_SECONDS": "1"})
    slack_channel(staging, ["deploy.failed"])
    released = receiver.hold(SLACK_PATH)
    receiver.script(SLACK_PATH, (500, {}))

    [delivery_id] = notify("deploy.failed", staging, run=1, kind_label="Deploy", release="v1", status="failed")

    # notify() has returned; the worker holds the first attempt open at the receiver.
    receiver.wait_for(SLACK_PATH, 1, timeout=60)
    assert Delivery.objects.get(pk=delivery_id).status == DeliveryStatus.SENDING
    released.set()

    def sent():
        return Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENT).exists()

    wait_for(sent, 60, "the Celery worker to send the delivery")
    delivery = Delivery.objects.get(pk=delivery_id)
    assert [(a.http_status, a.retry_in_seconds) for a in delivery.attempts.all()] == [(500, 1.0), (200, None)]
    first, second = receiver.to(SLACK_PATH)
    assert second.at - first.at >= 1.0
    assert first.body == second.body and first.body["text"].startswith(":x: staging: Deploy of v1 failed")


def test_an_rq_worker_sends_the_delivery(staging, settings, receiver, processes, clean_queues):
    import django_rq

    settings.OPSCONSOLE_QUEUE = "rq"
    slack_channel(staging, ["deploy.succeeded"])
    [delivery_id] = notify("deploy.succeeded", staging, run=2, kind_label="Deploy", release="v2")
    assert django_rq.get_queue("default").count == 1
    assert receiver.requests == []

    worker = processes.start(
        "rq", MANAGE + ["rqworker", "default", "--burst"], "rq", **{SLACK_VAR: receiver.url(SLACK_PATH)}
    )
    assert worker.wait(timeout=60) == 0, worker.log_path.read_text()
    assert Delivery.objects.get(pk=delivery_id).status == DeliveryStatus.SENT
    assert receiver.to(SLACK_PATH)[0].body["text"].startswith(":information_source: staging: Deploy of v2 succeeded")
