"""Redis snapshot runs. First with ElastiCache stubbed (botocore Stubber, response shapes from the
API reference) and S3 on the sandbox's moto server: the export writes its object as ElastiCache
would, then the run tags it and copies it to the DR bucket. Then end to end against the sandbox
server, whose ElastiCache export extension (sandbox/elasticache_export.py) writes the object."""

import hashlib
from datetime import UTC, datetime

import pytest
from botocore.stub import ANY, Stubber

from backups import jobs, s3stream
from backups.models import BackupPolicy, BackupStatus, Kind
from backups.services import request_backup
from opsconsole import aws
from opsconsole.runs.models import Status
from sandbox.bootstrap import BACKUP_BUCKETS, DR_REGION, REGION, clients
from tests.backups.conftest import s3

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RDB = b"REDIS0011\xfa\tredis-ver\x057.1.0\xfe\x00\xfb\x01\x00\x00\x03key\x05value\xff" + b"\x00" * 8
CLUSTER = "sentinel-staging-redis"


def snapshot(status: str, name: str = "opsconsole-staging-snapshot") -> dict:
    """A Snapshot element as DescribeSnapshots / CreateSnapshot / CopySnapshot return it."""
    created = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    return {
        "SnapshotName": name,
        "CacheClusterId": CLUSTER,
        "SnapshotStatus": status,
        "SnapshotSource": "manual",
        "CacheNodeType": "cache.t3.micro",
        "Engine": "redis",
        "EngineVersion": "7.1.0",
        "NumCacheNodes": 1,
        "PreferredAvailabilityZone": "us-east-1a",
        "CacheClusterCreateTime": created,
        "PreferredMaintenanceWindow": "sun:05:00-sun:06:00",
        "Port": 6379,
        "CacheParameterGroupName": "default.redis7",
        "CacheSubnetGroupName": "default",
        "VpcId": "vpc-0a1b2c3d",
        "AutoMinorVersionUpgrade": True,
        "SnapshotRetentionLimit": 0,
        "SnapshotWindow": "03:00-04:00",
        "NodeSnapshots": [
            {
                "CacheNodeId": "0001",
                "CacheSize": "6 MB",
                "CacheNodeCreateTime": created,
                "SnapshotCreateTime": created,
            }
        ],
        "ARN": f"arn:aws:elasticache:{REGION}:123456789012:snapshot:{name}",
        "DataTiering": "disabled",
    }


class Elasticache:
    """The run's ElastiCache client, stubbed; a copy_snapshot with TargetBucket writes the
    exported object into the (moto) bucket as ElastiCache's export does."""

    def __init__(self, monkeypatch, export: bool = True):
        self.client = aws.client("elasticache", REGION)
        self.stub = Stubber(self.client)
        self.exported: list[str] = []
        if export:
            self.client.meta.events.register("before-parameter-build.elasticache.CopySnapshot", self._export)
        real = aws.client
        monkeypatch.setattr(
            aws,
            "client",
            lambda service, region, role_arn="": (
                self.client if service == "elasticache" else real(service, region, role_arn)
            ),
        )

    def _export(self, params, **_):
        key = f"{params['TargetSnapshotName']}-0001.rdb"
        s3().put_object(Bucket=params["TargetBucket"], Key=key, Body=RDB)
        self.exported.append(key)

    def not_a_replication_group(self):
        self.stub.add_client_error(
            "describe_replication_groups",
            service_error_code="ReplicationGroupNotFoundFault",
            service_message=f"ReplicationGroup {CLUSTER} not found.",
            http_status_code=404,
            expected_params={"ReplicationGroupId": CLUSTER},
        )

    def creates(self):
        self.stub.add_response(
            "create_snapshot",
            {"Snapshot": snapshot("creating")},
            {"SnapshotName": ANY, "CacheClusterId": CLUSTER, "Tags": [jobs.CONSOLE_TAG]},
        )

    def describes(self, *statuses: str):
        for status in statuses:
            self.stub.add_response("describe_snapshots", {"Snapshots": [snapshot(status)]}, {"SnapshotName": ANY})

    def copies_to(self, bucket: str):
        self.stub.add_response(
            "copy_snapshot",
            {"Snapshot": snapshot("exporting")},
            {"SourceSnapshotName": ANY, "TargetSnapshotName": ANY, "TargetBucket": bucket},
        )


def messages(run) -> list[str]:
    return list(run.events.values_list("message", flat=True))


def test_a_snapshot_is_exported_to_the_bucket_tagged_and_copied_to_the_dr_region(users, redis_policy, monkeypatch):
    ec = Elasticache(monkeypatch)
    ec.not_a_replication_group()
    ec.creates()
    ec.describes("creating", "available")
    ec.copies_to(BACKUP_BUCKETS[REGION])
    ec.describes("exporting", "available")
    with ec.stub:
        run = request_backup(redis_policy, users["backup_operator"])
        ec.stub.assert_no_pending_responses()
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, (run.error, messages(run))
    backup = run.backup
    [key] = ec.exported
    assert key.startswith("redis-opsconsole-staging-")  # the policy's prefix, flattened into the name
    assert backup.status == BackupStatus.AVAILABLE
    assert backup.identifier == key.removesuffix("-0001.rdb").removeprefix("redis-")  # the snapshot
    assert backup.size_bytes == len(RDB)
    tags = s3stream.object_tags(s3(), BACKUP_BUCKETS[REGION], key)
    assert tags["created-by"] == "opsconsole" and tags["sha256"] == backup.sha256
    copy = s3(DR_REGION).get_object(Bucket=BACKUP_BUCKETS[DR_REGION], Key=key)["Body"].read()
    assert copy == RDB
    assert s3stream.object_tags(s3(DR_REGION), BACKUP_BUCKETS[DR_REGION], key)["sha256"] == backup.sha256
    assert backup.dr_region == DR_REGION and backup.dr_identifier == key.removesuffix("-0001.rdb")
    assert [step["state"] for step in run.steps] == ["done", "done", "done", "done"]


def test_a_snapshot_that_ends_failed_fails_the_run_before_any_export(users, redis_policy, monkeypatch):
    ec = Elasticache(monkeypatch)
    ec.not_a_replication_group()
    ec.creates()
    ec.describes("creating", "failed")
    with ec.stub:
        run = request_backup(redis_policy, users["backup_operator"])
        ec.stub.assert_no_pending_responses()  # and no copy_snapshot was made
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "ended failed" in run.error and CLUSTER in run.error
    assert run.backup.status == BackupStatus.FAILED and run.backup.error == run.error
    assert not ec.exported
    assert s3().list_objects_v2(Bucket=BACKUP_BUCKETS[REGION]).get("KeyCount", 0) == 0


def test_a_throttled_describe_snapshots_is_retried(users, redis_policy, monkeypatch):
    ec = Elasticache(monkeypatch)
    ec.not_a_replication_group()
    ec.creates()
    ec.describes("creating")
    ec.stub.add_client_error(
        "describe_snapshots", service_error_code="Throttling", service_message="Rate exceeded", http_status_code=400
    )
    ec.describes("available")
    ec.copies_to(BACKUP_BUCKETS[REGION])
    ec.describes("available")
    with ec.stub:
        run = request_backup(redis_policy, users["backup_operator"])
        ec.stub.assert_no_pending_responses()
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, (run.error, messages(run))
    assert any("Throttling" in m and "retrying" in m for m in messages(run))


def test_the_snapshot_quota_fails_the_run_with_awss_reason(users, redis_policy, monkeypatch):
    ec = Elasticache(monkeypatch)
    ec.not_a_replication_group()
    ec.stub.add_client_error(
        "create_snapshot",
        service_error_code="SnapshotQuotaExceededFault",
        service_message="The request cannot be processed because it would exceed the maximum number of snapshots.",
        http_status_code=400,
    )
    with ec.stub:
        run = request_backup(redis_policy, users["backup_operator"])
        ec.stub.assert_no_pending_responses()
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert run.error.startswith("AWS refused to make the backup: SnapshotQuotaExceededFault")
    assert "maximum number of snapshots" in run.error
    assert run.backup.status == BackupStatus.FAILED
    assert [step["state"] for step in run.steps][0] == "failed"


def test_a_replication_group_is_snapshotted_by_its_group_id(users, redis_policy, monkeypatch):
    redis_policy.source_identifier = "sentinel-staging-rg"
    redis_policy.save()
    ec = Elasticache(monkeypatch)
    ec.stub.add_response(
        "describe_replication_groups",
        {"ReplicationGroups": [{"ReplicationGroupId": "sentinel-staging-rg", "Status": "available"}]},
        {"ReplicationGroupId": "sentinel-staging-rg"},
    )
    ec.stub.add_client_error(
        "create_snapshot",
        service_error_code="InvalidReplicationGroupState",
        service_message="Replication group sentinel-staging-rg is not in available state.",
        http_status_code=400,
        expected_params={"SnapshotName": ANY, "ReplicationGroupId": "sentinel-staging-rg", "Tags": [jobs.CONSOLE_TAG]},
    )
    with ec.stub:
        run = request_backup(redis_policy, users["backup_operator"])
        ec.stub.assert_no_pending_responses()
    run.refresh_from_db()
    assert run.status == Status.FAILED and "InvalidReplicationGroupState" in run.error


def test_an_exports_objects_are_told_apart_from_a_longer_names(stack):
    bucket = BACKUP_BUCKETS[REGION]
    for key in ("redis-x-run1-0001.rdb", "redis-x-run1-0002.rdb", "redis-x-run10-0001.rdb", "redis-x-run1.rdb"):
        s3().put_object(Bucket=bucket, Key=key, Body=b"x")
    found = sorted(o["Key"] for o in jobs.export_objects(s3(), bucket, "redis-x-run1"))
    assert found == ["redis-x-run1-0001.rdb", "redis-x-run1-0002.rdb", "redis-x-run1.rdb"]


# --- End to end against the sandbox server (its ElastiCache export extension, no stubs) -----------
def test_a_redis_backup_succeeds_end_to_end_against_the_sandbox(users, redis_policy, stack):
    run = request_backup(redis_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, (run.error, messages(run))
    backup = run.backup
    key = f"redis-{backup.identifier}-0001.rdb"
    data = s3().get_object(Bucket=BACKUP_BUCKETS[REGION], Key=key)["Body"].read()
    assert data.startswith(b"REDIS") and backup.identifier.encode() in data
    assert backup.size_bytes == len(data) and backup.sha256 == hashlib.sha256(data).hexdigest()
    assert s3(DR_REGION).get_object(Bucket=BACKUP_BUCKETS[DR_REGION], Key=key)["Body"].read() == data
    snapshots = clients(stack.endpoint)("elasticache").describe_snapshots(SnapshotName=backup.identifier)
    assert snapshots["Snapshots"][0]["SnapshotStatus"] == "available"


def test_the_sandbox_refuses_an_export_to_another_regions_bucket(users, redis_policy, stack):
    redis_policy.bucket = BACKUP_BUCKETS[DR_REGION]
    redis_policy.save()
    run = request_backup(redis_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "InvalidParameterValue" in run.error and "exports only to a bucket in us-east-1" in run.error


def test_the_demos_redis_policy_succeeds_against_the_sandbox(users, staging, production, stack):
    from sandbox.demo import seed_backup_policies

    seed_backup_policies(stack)
    policy = BackupPolicy.objects.get(environment=staging, kind=Kind.REDIS_SNAPSHOT)
    policy.full_clean()
    run = request_backup(policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, (run.error, messages(run))
    assert run.backup.dr_bucket == BACKUP_BUCKETS[DR_REGION]
