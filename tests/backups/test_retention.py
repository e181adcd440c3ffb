"""Retention deletes only what the console made, past the retention period, never below the
minimum number of copies nor the newest good backup; every deletion is audited."""

from datetime import timedelta

import pytest
from django.utils import timezone

from backups.models import Backup, BackupStatus
from backups.services import expired, request_backup
from opsconsole.audit.models import AuditEvent
from opsconsole.runs.models import Status
from opsconsole.runs.services import launch
from sandbox.bootstrap import BACKUP_BUCKETS, DR_REGION, REGION, clients
from tests.backups.conftest import s3

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def age(backup: Backup, days: int) -> None:
    when = timezone.now() - timedelta(days=days)
    Backup.objects.filter(pk=backup.pk).update(started_at=when, finished_at=when)


def keys() -> set[str]:
    return {o["Key"] for o in s3().list_objects_v2(Bucket=BACKUP_BUCKETS[REGION]).get("Contents", [])}


def test_retention_keeps_the_minimum_when_every_backup_is_old(users, pg_policy, staging):
    backups = [request_backup(pg_policy, users["backup_operator"]).backup for _ in range(4)]
    for days, backup in zip((40, 30, 20, 10), backups, strict=True):
        age(backup, days)
    run = launch("backups.retention", environment=staging, check_permission=False)
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    statuses = [Backup.objects.get(pk=b.pk).status for b in backups]
    assert statuses == [BackupStatus.DELETED, BackupStatus.DELETED, BackupStatus.AVAILABLE, BackupStatus.AVAILABLE]
    assert keys() == {backups[2].identifier, backups[3].identifier}
    audited = AuditEvent.objects.filter(action="backups.backup.deleted")
    assert sorted(audited.values_list("target", flat=True)) == sorted(f"backup:{b.pk}" for b in backups[:2])


def test_retention_leaves_objects_it_did_not_make(users, pg_policy, staging):
    backups = [request_backup(pg_policy, users["backup_operator"]).backup for _ in range(3)]
    for backup in backups:
        age(backup, 30)
    oldest = backups[0]
    s3().put_object_tagging(
        Bucket=BACKUP_BUCKETS[REGION],
        Key=oldest.identifier,
        Tagging={"TagSet": [{"Key": "owner", "Value": "someone-else"}]},
    )
    launch("backups.retention", environment=staging, check_permission=False)
    assert oldest.identifier in keys()


def test_retention_deletes_an_old_redis_snapshot_and_its_exported_objects(users, redis_policy, staging, stack):
    """Without a DR copy the export's objects are found from the run's prefix (`redis-<snapshot>`),
    not from the snapshot's name; in both regions with one."""
    redis_policy.min_copies, redis_policy.copy_to_dr = 1, False
    redis_policy.save()
    local_only = request_backup(redis_policy, users["backup_operator"]).backup
    redis_policy.copy_to_dr = True
    redis_policy.save()
    with_dr = request_backup(redis_policy, users["backup_operator"]).backup
    newest = request_backup(redis_policy, users["backup_operator"]).backup
    for days, backup in ((30, local_only), (20, with_dr), (1, newest)):
        age(backup, days)
    run = launch("backups.retention", environment=staging, check_permission=False)
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    assert keys() == {f"redis-{newest.identifier}-0001.rdb"}
    west = {o["Key"] for o in s3(DR_REGION).list_objects_v2(Bucket=BACKUP_BUCKETS[DR_REGION]).get("Contents", [])}
    assert west == {f"redis-{newest.identifier}-0001.rdb"}
    snapshots = clients(stack.endpoint)("elasticache").describe_snapshots()["Snapshots"]
    assert [s["SnapshotName"] for s in snapshots] == [newest.identifier]
    assert Backup.objects.get(pk=local_only.pk).status == BackupStatus.DELETED


def test_the_newest_backup_is_kept_even_with_a_minimum_of_zero():
    now = timezone.now()
    old = [
        Backup(pk=i, started_at=now - timedelta(days=30 + i), finished_at=now - timedelta(days=30 + i))
        for i in range(3)
    ]
    doomed = expired(old, retention_days=7, min_copies=0, now=now)
    assert [b.pk for b in doomed] == [1, 2]


def test_recent_backups_are_never_expired():
    now = timezone.now()
    recent = [Backup(pk=i, started_at=now - timedelta(days=i), finished_at=now - timedelta(days=i)) for i in range(6)]
    assert expired(recent, retention_days=7, min_copies=2, now=now) == []
