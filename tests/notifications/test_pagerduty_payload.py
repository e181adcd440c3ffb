"""PagerDuty receives Events API v2 events: the fields it requires, the routing key read from the
worker's environment at send time (never stored), and one dedup key per environment and subject
so a success resolves the incident a failure opened."""

from datetime import datetime

import pytest

from notifications.delivery import notify, wait_for_inline_deliveries
from notifications.models import Delivery, DeliveryStatus
from tests.notifications.conftest import BASE_URL, PAGERDUTY_PATH, ROUTING_KEY, pagerduty_channel

pytestmark = pytest.mark.django_db(transaction=True)

FACTS = {
    "run": 41,
    "kind": "deployments.deploy",
    "kind_label": "Deploy",
    "release": "v1.3.0",
    "status": "failed",
    "outcome": "failed",
    "error": "circuit breaker tripped",
    "link": f"{BASE_URL}/runs/41/",
}


def test_a_failed_deploy_triggers_an_incident_with_every_events_v2_field(staging, notify_settings, receiver):
    pagerduty_channel(staging, ["deploy.failed"])
    [delivery_id] = notify("deploy.failed", staging, **FACTS)
    [request] = receiver.wait_for(PAGERDUTY_PATH, 1)
    assert wait_for_inline_deliveries()

    event = request.body
    assert request.headers["Content-Type"] == "application/json"
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "opsconsole/staging/deploy"
    payload = event["payload"]
    assert payload["summary"] == "staging: Deploy of v1.3.0 failed (run #41): circuit breaker tripped"
    assert len(payload["summary"]) <= 1024
    assert payload["source"] == "opsconsole/staging"
    assert payload["severity"] == "error"
    assert payload["severity"] in ("critical", "error", "warning", "info")
    assert datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00")).tzinfo is not None
    assert payload["component"] == "staging"
    assert payload["class"] == "deploy.failed"
    assert payload["custom_details"]["run"] == 41
    assert payload["custom_details"]["error"] == "circuit breaker tripped"
    assert event["links"] == [{"href": f"{BASE_URL}/runs/41/", "text": "Open in the ops console"}]
    assert event["client_url"] == BASE_URL

    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == DeliveryStatus.SENT
    assert [(a.number, a.http_status, a.error) for a in delivery.attempts.all()] == [(1, 202, "")]


def test_a_later_success_resolves_the_same_incident(staging, notify_settings, receiver):
    pagerduty_channel(staging, ["deploy.failed", "deploy.succeeded"])
    notify("deploy.failed", staging, **FACTS)
    receiver.wait_for(PAGERDUTY_PATH, 1)
    notify("deploy.succeeded", staging, **{**FACTS, "run": 42, "status": "succeeded", "error": ""})
    first, second = receiver.wait_for(PAGERDUTY_PATH, 2)
    assert (first.body["event_action"], second.body["event_action"]) == ("trigger", "resolve")
    assert first.body["dedup_key"] == second.body["dedup_key"]
    assert second.body["payload"]["severity"] == "info"


def test_a_failed_dr_operation_pages_as_critical_and_a_completed_one_resolves(staging, notify_settings, receiver):
    pagerduty_channel(staging, ["dr.completed"])
    notify("dr.completed", staging, run=7, operation="failover", status="errored", outcome="errored")
    notify("dr.completed", staging, run=8, operation="failover", status="succeeded", outcome="succeeded")
    bodies = sorted((r.body for r in receiver.wait_for(PAGERDUTY_PATH, 2)), key=lambda b: b["dedup_key"])
    assert [(b["dedup_key"], b["event_action"], b["payload"]["severity"]) for b in bodies] == [
        ("opsconsole/staging/dr/7", "trigger", "critical"),
        ("opsconsole/staging/dr/8", "resolve", "info"),
    ]


def test_the_routing_key_is_never_stored(staging, notify_settings, receiver):
    pagerduty_channel(staging, ["deploy.failed"])
    [delivery_id] = notify("deploy.failed", staging, **FACTS)
    receiver.wait_for(PAGERDUTY_PATH, 1)
    assert wait_for_inline_deliveries()
    delivery = Delivery.objects.get(pk=delivery_id)
    assert "routing_key" not in delivery.payload
    stored = repr(Delivery.objects.filter(pk=delivery_id).values().first()) + repr(list(delivery.attempts.values()))
    assert ROUTING_KEY not in stored
    assert delivery.channel.secret == "env:TEST_PAGERDUTY_ROUTING_KEY"
