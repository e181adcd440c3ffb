"""Delivery retries what may succeed later (HTTP 5xx, 429 after its Retry-After, no answer, no
connection) with a bounded backoff, records every attempt, and ends `failed`, visibly, when it
gives up or when retrying cannot help (4xx, a missing secret)."""

import socket

import pytest

from notifications.delivery import notify, wait_for_inline_deliveries
from notifications.models import Delivery, DeliveryStatus
from notifications.sending import parse_retry_after
from tests.notifications.conftest import SLACK_PATH, SLACK_VAR, slack_channel

pytestmark = pytest.mark.django_db(transaction=True)


def attempts(delivery_id):
    return list(Delivery.objects.get(pk=delivery_id).attempts.values_list("number", "http_status", "error"))


def send(environment) -> int:
    [delivery_id] = notify("deploy.failed", environment, run=3, kind_label="Deploy", release="v2", error="boom")
    assert wait_for_inline_deliveries()
    return delivery_id


def test_a_500_is_retried_and_the_delivery_sent_on_the_next_attempt(staging, notify_settings, receiver):
    slack_channel(staging, ["deploy.failed"])
    receiver.script(SLACK_PATH, (500, {}))
    delivery_id = send(staging)
    assert len(receiver.to(SLACK_PATH)) == 2
    assert attempts(delivery_id) == [(1, 500, 'HTTP 500: {"status": "error"}'), (2, 200, "")]
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == DeliveryStatus.SENT and delivery.attempt_count == 2 and delivery.sent_at
    first = delivery.attempts.get(number=1)
    assert first.retry_in_seconds == pytest.approx(0.05)


def test_a_429_is_retried_no_sooner_than_its_retry_after(staging, notify_settings, receiver):
    slack_channel(staging, ["deploy.failed"])
    receiver.script(SLACK_PATH, (429, {"Retry-After": "1"}))
    delivery_id = send(staging)
    first, second = receiver.to(SLACK_PATH)
    assert second.at - first.at >= 1.0  # honoured, though our own backoff would have waited 0.05 s
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == DeliveryStatus.SENT
    assert [(a.http_status, a.retry_in_seconds) for a in delivery.attempts.all()] == [(429, 1.0), (200, None)]


def test_backoff_doubles_and_the_delivery_fails_visibly_after_the_last_attempt(staging, notify_settings, receiver):
    slack_channel(staging, ["deploy.failed"])
    receiver.script(SLACK_PATH, (503, {}), (500, {}), (502, {}), (200, {}))
    delivery_id = send(staging)
    assert len(receiver.to(SLACK_PATH)) == 3  # NOTIFY_MAX_ATTEMPTS: the fourth never happens
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error.startswith("HTTP 502") and delivery.last_error.endswith("(gave up after 3 attempts)")
    assert [a.retry_in_seconds for a in delivery.attempts.all()] == [0.05, 0.1, None]


def test_a_retry_after_longer_than_the_longest_wait_ends_the_delivery(staging, notify_settings, receiver):
    notify_settings.NOTIFY_MAX_WAIT_SECONDS = 30
    slack_channel(staging, ["deploy.failed"])
    receiver.script(SLACK_PATH, (429, {"Retry-After": "3600"}))
    delivery_id = send(staging)
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == DeliveryStatus.FAILED
    assert "asked to wait 3600s" in delivery.last_error
    assert len(receiver.to(SLACK_PATH)) == 1


def test_a_client_error_is_not_retried(staging, notify_settings, receiver):
    slack_channel(staging, ["deploy.failed"])
    receiver.script(SLACK_PATH, (404, {}))
    delivery_id = send(staging)
    assert attempts(delivery_id) == [(1, 404, 'HTTP 404: {"status": "error"}')]
    assert Delivery.objects.get(pk=delivery_id).status == DeliveryStatus.FAILED


def test_no_answer_within_the_timeout_is_retried(staging, notify_settings, receiver):
    notify_settings.NOTIFY_TIMEOUT_SECONDS = 0.3
    slack_channel(staging, ["deploy.failed"])
    receiver.hold(SLACK_PATH)  # never answers until the test ends
    delivery_id = send(staging)
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == DeliveryStatus.FAILED
    assert [error for _, _, error in attempts(delivery_id)][:2] == ["No answer within 0.3s (timed out)."] * 2
    assert delivery.attempt_count == 3


def test_a_refused_connection_is_retried_and_the_error_never_shows_the_webhook_url(
    staging, notify_settings, monkeypatch
):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv(SLACK_VAR, f"http://127.0.0.1:{port}/services/T1/B1/SECRETTOKEN")
    slack_channel(staging, ["deploy.failed"])
    delivery_id = send(staging)
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempt_count == 3
    assert all(error.startswith("Could not connect") for _, _, error in attempts(delivery_id))
    assert "SECRETTOKEN" not in delivery.last_error + "".join(e for _, _, e in attempts(delivery_id))


def test_a_missing_secret_fails_at_once_naming_the_variable(staging, notify_settings, receiver, monkeypatch):
    monkeypatch.delenv(SLACK_VAR)
    slack_channel(staging, ["deploy.failed"])
    delivery_id = send(staging)
    assert attempts(delivery_id) == [(1, None, f"The worker has no environment variable {SLACK_VAR}.")]
    assert Delivery.objects.get(pk=delivery_id).status == DeliveryStatus.FAILED
    assert receiver.requests == []


def test_retry_after_may_be_an_http_date():
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
