"""One notification handed to two workers at the same moment (a broker redelivering, the sweep
re-queueing a delivery a worker is about to take) is sent once: deliver() claims it with one
conditional UPDATE (pending -> sending), and only the worker whose UPDATE changed the row sends.

Real threads, each with its own PostgreSQL connection (closed when the thread ends), a barrier in
front of deliver(), and a real HTTP receiver standing in for Slack that counts what arrives."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from notifications import delivery
from notifications.models import Delivery, DeliveryStatus
from tests.notifications.conftest import SLACK_PATH, slack_channel

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """The queue's messages (delivery ids) kept for the test to deliver, instead of sent at once."""
    messages: list[int] = []
    monkeypatch.setattr(delivery, "enqueue", lambda delivery_id, delay=0: messages.append(delivery_id))
    return messages


def deliver_at_once(delivery_id: int, workers: int) -> list:
    barrier = threading.Barrier(workers, timeout=30)
    outcomes: list = [None] * workers

    def worker(index: int) -> None:
        try:
            barrier.wait()
            outcomes[index] = delivery.deliver(delivery_id)
        except Exception as exc:  # noqa: BLE001 (an exception is an outcome the test reports)
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a delivery did not finish within 60 s"
    return outcomes


@pytest.mark.parametrize("workers", [2, 6])
def test_a_notification_delivered_by_several_workers_at_once_is_sent_once(
    staging, notify_settings, receiver, queued, workers
):
    slack_channel(staging, ["deploy.failed"])
    [delivery_id] = delivery.notify("deploy.failed", staging, run=7, kind_label="Deploy", release="v3", error="boom")
    assert queued == [delivery_id] and receiver.to(SLACK_PATH) == []

    outcomes = deliver_at_once(delivery_id, workers)

    assert len(receiver.to(SLACK_PATH)) == 1, f"Slack received {len(receiver.to(SLACK_PATH))} messages"
    assert sorted(outcomes) == sorted([DeliveryStatus.SENT] + ["not-claimed"] * (workers - 1))
    sent = Delivery.objects.get(pk=delivery_id)
    assert sent.status == DeliveryStatus.SENT and sent.attempt_count == 1 and sent.sent_at
    assert list(sent.attempts.values_list("number", "http_status")) == [(1, 200)]
    assert queued == [delivery_id]  # nothing was queued again


def test_a_notification_delivered_again_after_it_was_sent_is_not_sent_again(staging, notify_settings, receiver, queued):
    slack_channel(staging, ["deploy.failed"])
    [delivery_id] = delivery.notify("deploy.failed", staging, run=8, kind_label="Deploy", release="v4", error="boom")
    assert delivery.deliver(delivery_id) == DeliveryStatus.SENT
    assert delivery.deliver(delivery_id) == "not-claimed"
    assert len(receiver.to(SLACK_PATH)) == 1
    assert Delivery.objects.get(pk=delivery_id).attempts.count() == 1
