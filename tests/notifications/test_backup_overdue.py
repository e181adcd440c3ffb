"""The periodic sweep reports a backup policy whose newest good backup is older than its RPO,
once per episode, and re-sends deliveries whose queue message was lost."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from backups.models import Backup, BackupPolicy, BackupStatus, Kind
from notifications import delivery as delivery_module
from notifications.delivery import wait_for_inline_deliveries
from notifications.models import Delivery, DeliveryStatus
from notifications.tasks import resend_lost, send_notices, sweep
from opsconsole.runs.schedules import PERIODIC
from tests.notifications.conftest import SLACK_PATH, slack_channel

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def policy(staging):
    return BackupPolicy.objects.create(
        environment=staging,
        kind=Kind.RDS_SNAPSHOT,
        name="hourly snapshot",
        source_identifier="db",
        rpo_minutes=60,
        copy_to_dr=False,
    )


def backup(policy, hours_ago: float, status=BackupStatus.AVAILABLE) -> Backup:
    finished = timezone.now() - timedelta(hours=hours_ago)
    return Backup.objects.create(
        policy=policy,
        policy_name=policy.name,
        environment=policy.environment,
        kind=policy.kind,
        status=status,
        region="us-east-1",
        identifier=f"snap-{hours_ago}",
        started_at=finished - timedelta(minutes=5),
        finished_at=finished,
    )


def test_an_overdue_backup_is_reported_once_until_a_newer_one_arrives(staging, policy, notify_settings, receiver):
    slack_channel(staging, ["backup.overdue"])
    backup(policy, hours_ago=3)
    backup(policy, hours_ago=0.1, status=BackupStatus.FAILED)  # a failed one does not count

    first = send_notices()
    assert len(first) == 1
    assert send_notices() == []  # the same episode
    [request] = receiver.wait_for(SLACK_PATH, 1)
    assert request.body["text"].startswith(
        ":warning: staging: backup hourly snapshot is overdue: the newest finished 3h 00m ago; the target is 60 min"
    )

    backup(policy, hours_ago=2)  # newer, and still too old: a new episode
    assert len(send_notices()) == 1
    backup(policy, hours_ago=0.2)  # fresh: nothing to report
    assert send_notices() == []
    assert wait_for_inline_deliveries()
    assert list(Delivery.objects.values_list("event", "status")) == [("backup.overdue", DeliveryStatus.SENT)] * 2


def test_a_policy_that_never_produced_a_backup_is_overdue_after_its_rpo(staging, policy, notify_settings, receiver):
    slack_channel(staging, ["backup.overdue"])
    assert send_notices() == []  # created just now
    BackupPolicy.objects.filter(pk=policy.pk).update(created_at=timezone.now() - timedelta(hours=2))
    assert len(send_notices()) == 1
    text = receiver.wait_for(SLACK_PATH, 1)[0].body["text"]
    assert "overdue: no backup since the policy was created 2h 00m ago; the target is 60 min" in text


def test_a_disabled_policy_is_not_reported(staging, policy, notify_settings):
    slack_channel(staging, ["backup.overdue"])
    backup(policy, hours_ago=5)
    BackupPolicy.objects.filter(pk=policy.pk).update(enabled=False)
    assert send_notices() == []


def test_a_delivery_whose_message_was_lost_is_sent_by_the_sweep(staging, notify_settings, receiver):
    channel = slack_channel(staging, ["deploy.failed"])
    long_ago = timezone.now() - timedelta(minutes=30)
    lost = Delivery.objects.create(
        channel=channel,
        channel_name=channel.name,
        channel_kind=channel.kind,
        environment=staging,
        event="deploy.failed",
        summary="staging: deploy failed",
        payload={"text": "staging: deploy failed"},
        next_attempt_at=long_ago,
    )
    assert resend_lost() == [lost.pk]
    assert wait_for_inline_deliveries()
    lost.refresh_from_db()
    assert lost.status == DeliveryStatus.SENT
    assert receiver.to(SLACK_PATH)[0].body == {"text": "staging: deploy failed"}


def test_the_sweep_is_a_registered_periodic_task(db):
    assert PERIODIC["notifications: overdue backups and lost deliveries"][0] == "notifications.tasks.sweep"
    assert sweep() == {"notices": [], "resent": []}


def test_a_delivery_claimed_late_is_not_taken_for_lost_while_it_is_being_sent(staging, notify_settings, receiver):
    channel = slack_channel(staging, ["deploy.failed"])
    late = Delivery.objects.create(
        channel=channel,
        channel_name=channel.name,
        channel_kind=channel.kind,
        environment=staging,
        event="deploy.failed",
        summary="staging: deploy failed",
        payload={"text": "staging: deploy failed"},
        next_attempt_at=timezone.now() - timedelta(minutes=12),  # the queue was busy
    )
    seen = {}
    real_send = delivery_module._send

    def send_while_the_sweep_runs(delivery):
        seen["resent"] = resend_lost()
        seen["status"] = Delivery.objects.get(pk=delivery.pk).status
        return real_send(delivery)

    with mock.patch.object(delivery_module, "_send", side_effect=send_while_the_sweep_runs):
        assert delivery_module.deliver(late.pk) == DeliveryStatus.SENT
    assert seen == {"resent": [], "status": DeliveryStatus.SENDING}
    assert wait_for_inline_deliveries()
    assert len(receiver.to(SLACK_PATH)) == 1
