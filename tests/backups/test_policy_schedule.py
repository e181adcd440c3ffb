"""A policy keeps its django-celery-beat crontab task in step: created, edited, disabled, deleted."""

import json

import pytest
from django.core.exceptions import ValidationError
from django_celery_beat.models import PeriodicTask

from backups.models import BackupPolicy, Kind
from backups.services import POLICY_TASK, freshness_state, next_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy(staging):
    return BackupPolicy.objects.create(
        environment=staging, kind=Kind.RDS_SNAPSHOT, name="nightly", schedule="0 3 * * *", source_identifier="db-1"
    )


def task_of(policy) -> PeriodicTask:
    policy.refresh_from_db()
    return PeriodicTask.objects.select_related("crontab").get(pk=policy.periodic_task_id)


def test_creating_a_policy_schedules_it(policy):
    task = task_of(policy)
    assert task.task == POLICY_TASK and json.loads(task.kwargs) == {"policy_id": policy.pk}
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "3", "*")
    assert task.enabled


def test_a_policy_edit_updates_its_beat_schedule(policy):
    policy.schedule = "*/15 2-4 * * 1-5"
    policy.save()
    task = task_of(policy)
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("*/15", "2-4", "1-5")
    assert PeriodicTask.objects.filter(task=POLICY_TASK).count() == 1
    policy.enabled = False
    policy.save()
    assert not task_of(policy).enabled
    assert next_run(policy) is None


def test_deleting_a_policy_removes_its_schedule(policy):
    task_id = task_of(policy).pk
    policy.delete()
    assert not PeriodicTask.objects.filter(pk=task_id).exists()


def test_a_bad_schedule_is_refused_with_a_clear_message(policy):
    policy.schedule = "every night"
    with pytest.raises(ValidationError, match="five crontab fields"):
        policy.full_clean()


def test_freshness_compares_the_newest_backup_with_the_rpo():
    from datetime import timedelta

    rpo = timedelta(hours=24)
    assert freshness_state(timedelta(hours=2), rpo) == "ok"
    assert freshness_state(timedelta(hours=21), rpo) == "warning"
    assert freshness_state(timedelta(hours=25), rpo) == "overdue"
    assert freshness_state(None, rpo) == "overdue"
