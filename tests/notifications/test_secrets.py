"""A channel's secret is a reference resolved by the worker when it sends: an environment
variable, or a Secrets Manager secret read from the environment's region (moto over HTTP here)."""

import pytest

from notifications.delivery import notify, wait_for_inline_deliveries
from notifications.models import Channel, Delivery, DeliveryStatus
from sandbox.bootstrap import clients
from tests.notifications.conftest import SLACK_PATH

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def channel(environment, secret: str) -> Channel:
    return Channel.objects.create(
        environment=environment, name="#ops", kind="slack", events=["deploy.failed"], secret=secret
    )


def test_a_secrets_manager_webhook_is_read_when_sending(staging, stack, notify_settings, receiver):
    secrets = clients(stack.endpoint, staging.aws_region)("secretsmanager")
    secrets.create_secret(Name="sentinel-slack-staging", SecretString=receiver.url(SLACK_PATH))
    channel(staging, "secretsmanager:sentinel-slack-staging")
    [delivery_id] = notify("deploy.failed", staging, run=4, kind_label="Deploy", release="v4", status="failed")
    assert wait_for_inline_deliveries()
    assert Delivery.objects.get(pk=delivery_id).status == DeliveryStatus.SENT
    assert receiver.to(SLACK_PATH)[0].body["text"].startswith(":x: staging: Deploy of v4 failed (run #4)")


def test_a_missing_secrets_manager_secret_fails_the_delivery_with_its_name(staging, stack, notify_settings, receiver):
    channel(staging, "secretsmanager:sentinel-nothing-here")
    [delivery_id] = notify("deploy.failed", staging, run=5)
    assert wait_for_inline_deliveries()
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempt_count == 1
    assert delivery.last_error == (
        "Secrets Manager secret sentinel-nothing-here could not be read (ResourceNotFoundException)."
    )
    assert receiver.requests == []
