"""Channels are created and edited in the admin, audited, and refuse a secret given as a value;
deliveries and their attempts are shown read-only, per environment."""

import pytest

from notifications.models import Channel, Delivery, DeliveryAttempt, DeliveryStatus
from opsconsole.audit.models import AuditEvent
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

ADD = "/admin/notifications/channel/add/"


def form(staging, **overrides):
    data = {
        "environment": staging.pk,
        "name": "#ops-staging",
        "kind": "slack",
        "enabled": "on",
        "events": ["deploy.failed", "deploy.rolled_back"],
        "secret": "env:SLACK_STAGING_WEBHOOK",
        "recipients": "",
    }
    data.update(overrides)
    return data


def test_an_admin_adds_a_channel_and_it_is_audited(users, staging):
    response = client_for(users["superuser"]).post(ADD, form(staging))
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = Channel.objects.get()
    assert (channel.kind, channel.events, channel.secret) == (
        "slack",
        ["deploy.failed", "deploy.rolled_back"],
        "env:SLACK_STAGING_WEBHOOK",
    )
    event = AuditEvent.objects.get(action="admin.notifications.channel.added")
    assert event.environment == "staging" and event.actor == users["superuser"]


def test_a_webhook_url_pasted_as_the_secret_is_refused_and_nothing_saved(users, staging):
    url = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"
    response = client_for(users["superuser"]).post(ADD, form(staging, secret=url))
    assert response.status_code == 200
    assert "not the value itself" in response.content.decode()
    assert not Channel.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="admin.notifications").exists()


def test_an_email_channel_needs_valid_recipients(users, staging):
    admin = client_for(users["superuser"])
    response = admin.post(ADD, form(staging, kind="email", secret="", recipients="ops@example.com, not-an-address"))
    assert "not-an-address is not an email address." in response.content.decode()
    response = admin.post(ADD, form(staging, kind="email", secret="", recipients="ops@example.com"))
    assert response.status_code == 302
    assert Channel.objects.get().recipients == "ops@example.com"


def test_a_channel_needs_an_event(users, staging):
    response = client_for(users["superuser"]).post(ADD, form(staging, events=[]))
    assert response.status_code == 200 and not Channel.objects.exists()


def test_deliveries_and_their_attempts_are_shown_read_only_per_environment(users, staging, production):
    channel = Channel.objects.create(
        environment=staging, name="on-call", kind="pagerduty", events=["deploy.failed"], secret="env:PD"
    )
    delivery = Delivery.objects.create(
        channel=channel,
        channel_name="on-call",
        channel_kind="pagerduty",
        environment=staging,
        event="deploy.failed",
        summary="staging: Deploy of v9 failed (run #5)",
        status=DeliveryStatus.FAILED,
        attempt_count=2,
        last_error="HTTP 500 (gave up after 2 attempts)",
    )
    DeliveryAttempt.objects.create(delivery=delivery, number=1, http_status=500, error="HTTP 500", retry_in_seconds=10)
    DeliveryAttempt.objects.create(delivery=delivery, number=2, http_status=500, error="HTTP 500")
    admin = client_for(users["superuser"])

    listing = admin.get(f"/admin/notifications/delivery/?environment__id__exact={staging.pk}").content.decode()
    assert "on-call" in listing and "Failed" in listing
    other = admin.get(f"/admin/notifications/delivery/?environment__id__exact={production.pk}").content.decode()
    assert "on-call" not in other

    page = admin.get(f"/admin/notifications/delivery/{delivery.pk}/change/").content.decode()
    assert "HTTP 500 (gave up after 2 attempts)" in page
    assert page.count("HTTP 500") >= 3  # the delivery's error and both attempts
    assert 'name="_save"' not in page  # read-only
    assert admin.post(f"/admin/notifications/delivery/{delivery.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Delivery.objects.filter(pk=delivery.pk).exists()
