"""RDS snapshot runs against the sandbox AWS, and the failures moto cannot produce (Stubber)."""

import pytest
from botocore.stub import Stubber

from backups.models import BackupStatus
from backups.services import request_backup
from opsconsole import aws
from opsconsole.runs.models import EnvironmentLock, Status
from sandbox.bootstrap import DR_REGION, clients

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_snapshot_is_tagged_waited_for_and_copied_to_the_dr_region(users, rds_policy, stack):
    run = request_backup(rds_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, (run.error, list(run.events.values_list("message", flat=True)))
    backup = run.backup
    assert backup.status == BackupStatus.AVAILABLE and backup.size_bytes == 20 * 1024**3
    rds = clients(stack.endpoint)("rds")
    snapshot = rds.describe_db_snapshots(DBSnapshotIdentifier=backup.identifier)["DBSnapshots"][0]
    tags = rds.list_tags_for_resource(ResourceName=snapshot["DBSnapshotArn"])["TagList"]
    assert {"Key": "created-by", "Value": "opsconsole"} in tags
    west = clients(stack.endpoint, DR_REGION)("rds")
    assert (
        west.describe_db_snapshots(DBSnapshotIdentifier=backup.dr_identifier)["DBSnapshots"][0]["Status"] == "available"
    )
    assert [step["state"] for step in run.steps] == ["done", "done", "done"]


def test_a_snapshot_does_not_take_the_environment_lock(users, rds_policy, staging):
    EnvironmentLock.acquire(staging, held_by="dana", reason="deploy in progress")
    run = request_backup(rds_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error


def test_the_snapshot_quota_fails_the_run_with_awss_reason(users, rds_policy, monkeypatch):
    rds = aws.client("rds", "us-east-1")
    stubber = Stubber(rds)
    stubber.add_client_error(
        "create_db_snapshot",
        service_error_code="SnapshotQuotaExceeded",
        service_message="Cannot create more than 100 manual snapshots",
        http_status_code=400,
    )
    stubber.activate()
    monkeypatch.setattr(aws, "client", lambda service, region, role_arn="": rds)
    run = request_backup(rds_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "SnapshotQuotaExceeded" in run.error
    assert run.backup.status == BackupStatus.FAILED
