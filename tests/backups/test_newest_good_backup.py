"""One newest good backup: the Backups page, the overdue notice, the Delivery page and /metrics
agree on it. Good: finished successfully and still there; one not verified yet counts, one whose
restore test failed does not; failed and running backups never do."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from backups.delivery import backup_history
from backups.models import Backup, BackupPolicy, BackupStatus, Kind, Verification, newest_good
from deployments.delivery import Period
from notifications.tasks import send_notices
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

H = timedelta(hours=1)


@pytest.fixture
def policy(staging):
    return BackupPolicy.objects.create(
        environment=staging, kind=Kind.RDS_SNAPSHOT, name="hourly", source_identifier="db", rpo_minutes=60
    )


def backup(policy, finished_ago: timedelta | None, status=BackupStatus.AVAILABLE, **fields) -> Backup:
    now = timezone.now()
    finished = None if finished_ago is None else now - finished_ago
    return Backup.objects.create(
        policy=policy,
        policy_name=policy.name,
        environment=policy.environment,
        kind=policy.kind,
        status=status,
        region="us-east-1",
        started_at=(finished or now) - timedelta(minutes=5),
        finished_at=finished,
        **fields,
    )


@pytest.fixture
def every_state(policy):
    """The newest first: running, failed, restore test failed, deleted by retention, then the two
    good ones: not verified yet (the newest good) and verified."""
    now = timezone.now()
    return {
        "running": backup(policy, None, BackupStatus.RUNNING),
        "failed": backup(policy, 1 * H, BackupStatus.FAILED),
        "verification_failed": backup(policy, 2 * H, verification=Verification.FAILED, verified_at=now - 0.5 * H),
        "deleted": backup(policy, 2.5 * H, BackupStatus.DELETED, deleted_at=now - 0.2 * H),
        "unverified": backup(policy, 3 * H),
        "verified": backup(policy, 4 * H, verification=Verification.PASSED, verified_at=now - 3.5 * H),
    }


def page_newest(users) -> Backup | None:
    response = client_for(users["viewer"]).get("/backups/")
    assert response.status_code == 200
    (row,) = response.context["rows"]
    return row.newest


def overdue_newest_at(policy):
    """What the overdue sweep reports as the newest good backup's end (the RPO is an hour)."""
    with mock.patch("notifications.tasks.notify", return_value=[1]) as notify:
        send_notices()
    if not notify.called:
        return "not overdue"
    return notify.call_args.kwargs["newest_backup_at"]


def delivery_age_now(policy):
    """The Delivery page's newest-good-backup age at the period's end (now)."""
    now = timezone.now()
    (history,) = backup_history(None, Period(30, now))
    return history, (None if history.ages[-1] is None else now - history.ages[-1])


def metrics(settings) -> dict[tuple[str, tuple], float]:
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", ["127.0.0.1/32"]
    response = Client().get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def metrics_newest(settings, policy) -> tuple[float, float]:
    samples = metrics(settings)
    labels = (("environment", policy.environment.name), ("kind", policy.kind))
    by_policy = tuple(sorted((*labels, ("policy", policy.name))))
    return (
        samples.get(("opsconsole_backup_newest_success_timestamp_seconds", labels), 0.0),
        samples[("opsconsole_backup_policy_newest_success_timestamp_seconds", by_policy)],
    )


def test_the_page_the_overdue_notice_delivery_and_metrics_name_the_same_newest_good_backup(
    users, settings, policy, every_state
):
    expected = every_state["unverified"]  # newer ones: running, failed, restore test failed, deleted
    assert newest_good(policy.backups) == expected
    assert page_newest(users) == expected
    assert overdue_newest_at(policy) == expected.finished_at
    _, finished = delivery_age_now(policy)
    assert finished == pytest.approx(expected.finished_at, abs=timedelta(seconds=5))
    assert metrics_newest(settings, policy) == (expected.finished_at.timestamp(),) * 2


def test_a_verified_backup_is_good_too(users, settings, policy, every_state):
    every_state["unverified"].delete()
    expected = every_state["verified"]
    assert page_newest(users) == expected
    assert overdue_newest_at(policy) == expected.finished_at
    assert delivery_age_now(policy)[1] == pytest.approx(expected.finished_at, abs=timedelta(seconds=5))
    assert metrics_newest(settings, policy) == (expected.finished_at.timestamp(),) * 2


def test_a_backup_whose_restore_test_failed_is_never_the_newest_good_one(users, settings, policy, every_state):
    Backup.objects.filter(pk__in=[every_state["unverified"].pk, every_state["verified"].pk]).delete()
    assert page_newest(users) is None
    assert overdue_newest_at(policy) is None  # overdue, with none since the policy was created
    assert delivery_age_now(policy)[1] is None
    assert metrics_newest(settings, policy) == (0.0, 0.0)
    assert "none available" in client_for(users["viewer"]).get("/backups/").content.decode()


@pytest.fixture(autouse=True)
def policy_created_long_ago(policy):
    # The overdue notice waits an RPO after a policy's creation before it reports none at all.
    BackupPolicy.objects.filter(pk=policy.pk).update(created_at=timezone.now() - 10 * H)


def test_backups_retention_deleted_count_in_the_delivery_history_only_while_they_lasted(users, settings, policy):
    """Why the page said "overdue, none yet" while Delivery counted 87 backups: Delivery counted
    deleted backups as the newest good one forever after retention deleted them."""
    now = timezone.now()
    for days in range(8, 13):  # before the previous week's end, deleted a moment ago
        backup(policy, days * 24 * H, BackupStatus.DELETED, deleted_at=now - timedelta(seconds=1))
    history, finished = delivery_age_now(policy)
    assert history.backups == 5
    assert finished is None  # nothing stands now, as on the page
    assert history.ages[-2] is not None  # at the previous week's end they were there
    assert page_newest(users) is None
    assert overdue_newest_at(policy) is None
    assert metrics_newest(settings, policy) == (0.0, 0.0)
