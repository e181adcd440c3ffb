"""Real deploys against the sandbox AWS tell their environment's channels: approval requested
(with the link), started, succeeded, rolled back. A slow or failing channel neither delays nor
fails the deploy it reports on."""

import pytest

from deployments.services import request_deploy
from notifications.delivery import wait_for_inline_deliveries
from notifications.models import Delivery, DeliveryStatus
from opsconsole.access.models import Role, RoleBinding
from opsconsole.runs.models import Status
from tests.notifications.conftest import BASE_URL, PAGERDUTY_PATH, SLACK_PATH, pagerduty_channel, slack_channel

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DEPLOY_EVENTS = ["approval.requested", "deploy.started", "deploy.succeeded", "deploy.failed", "deploy.rolled_back"]


def events_sent(environment, channel_name):
    assert wait_for_inline_deliveries()
    return list(
        Delivery.objects.filter(environment=environment, channel_name=channel_name)
        .order_by("id")
        .values_list("event", "status")
    )


def test_a_deploy_reports_its_start_and_success(users, staging_aws, releases, stack, notify_settings, receiver):
    slack_channel(staging_aws, DEPLOY_EVENTS)
    run = request_deploy(staging_aws, releases["v1.1.0"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    assert events_sent(staging_aws, "#ops") == [
        ("deploy.started", DeliveryStatus.SENT),
        ("deploy.succeeded", DeliveryStatus.SENT),
    ]
    started, succeeded = (r.body["text"] for r in receiver.to(SLACK_PATH))
    assert started.startswith(f":information_source: staging: Deploy of v1.1.0 started (run #{run.pk})")
    assert succeeded.startswith(f":information_source: staging: Deploy of v1.1.0 succeeded (run #{run.pk})")


def test_a_deploy_awaiting_approval_sends_the_link_to_approve_it(
    users, production_aws, releases, stack, notify_settings, receiver
):
    pagerduty_channel(production_aws, ["approval.requested"])
    RoleBinding.objects.create(user=users["deployer"], role=Role.DEPLOYER, environment=production_aws)
    run = request_deploy(production_aws, releases["v1.1.0"], users["deployer"])
    assert run.status == Status.AWAITING_APPROVAL
    [request] = receiver.wait_for(PAGERDUTY_PATH, 1)
    body = request.body
    assert body["links"] == [{"href": f"{BASE_URL}/runs/{run.pk}/", "text": "Open in the ops console"}]
    assert body["payload"]["summary"] == (f"production: Deploy run #{run.pk} (v1.1.0) requested by dana needs approval")
    assert body["payload"]["custom_details"]["approvals_required"] == 1
    assert body["dedup_key"] == f"opsconsole/production/approval/{run.pk}"


def test_a_rolled_back_deploy_pages_with_a_warning(users, staging_aws, releases, stack, notify_settings, receiver):
    request_deploy(staging_aws, releases["v1.1.0"], users["deployer"])
    pagerduty_channel(staging_aws, ["deploy.failed", "deploy.rolled_back"])
    run = request_deploy(staging_aws, releases["v1.3.0-broken"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.ROLLED_BACK
    [request] = receiver.wait_for(PAGERDUTY_PATH, 1)
    assert request.body["event_action"] == "trigger"
    assert request.body["payload"]["severity"] == "warning"
    assert request.body["payload"]["summary"].startswith(
        f"staging: Deploy of v1.3.0-broken rolled back (run #{run.pk})"
    )
    assert "circuit breaker" in request.body["payload"]["custom_details"]["error"]


def test_a_slow_channel_and_a_failing_one_neither_delay_nor_fail_the_deploy(
    users, staging_aws, releases, stack, notify_settings, receiver
):
    notify_settings.NOTIFY_TIMEOUT_SECONDS = 60
    slack_channel(staging_aws, DEPLOY_EVENTS)  # answers only when released
    pagerduty_channel(staging_aws, DEPLOY_EVENTS)  # always answers 500
    released = receiver.hold(SLACK_PATH)
    receiver.script(PAGERDUTY_PATH, *[(500, {})] * 10)

    run = request_deploy(staging_aws, releases["v1.1.0"], users["deployer"])

    # The deploy has ended, succeeded, while Slack still sits on the first notification.
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    assert receiver.in_flight >= 1 and not released.is_set()
    assert not Delivery.objects.filter(channel_name="#ops", status=DeliveryStatus.SENT).exists()

    released.set()
    assert events_sent(staging_aws, "#ops") == [
        ("deploy.started", DeliveryStatus.SENT),
        ("deploy.succeeded", DeliveryStatus.SENT),
    ]
    assert events_sent(staging_aws, "on-call") == [
        ("deploy.started", DeliveryStatus.FAILED),
        ("deploy.succeeded", DeliveryStatus.FAILED),
    ]
    for delivery in Delivery.objects.filter(channel_name="on-call"):
        assert [a.http_status for a in delivery.attempts.all()] == [500, 500, 500]
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED and run.error == ""
    messages = " ".join(run.events.values_list("message", flat=True))
    assert "notification" not in messages.lower()
