"""The AWS calls of a failover, free of Django: the newest DR snapshot, the DR database restore,
Route53 switches and reads. Waits go through opsconsole.aws.Poller (transient retries, cancel)."""

from __future__ import annotations

import time
from datetime import datetime

from botocore.exceptions import ClientError

from opsconsole.aws import Poller, StepFailed


def newest_snapshot(rds, poller: Poller, source_instance: str) -> dict | None:
    """The newest available snapshot of `source_instance` in this client's region."""
    found = poller.call(rds.describe_db_snapshots, DBInstanceIdentifier=source_instance).get("DBSnapshots", [])
    available = [s for s in found if s.get("Status") == "available" and s.get("SnapshotCreateTime")]
    return max(available, key=lambda s: s["SnapshotCreateTime"], default=None)


def db_instance(rds, poller: Poller, identifier: str) -> dict | None:
    try:
        return poller.call(rds.describe_db_instances, DBInstanceIdentifier=identifier)["DBInstances"][0]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "DBInstanceNotFound":
            return None
        raise


def wait_for_instance(rds, poller: Poller, identifier: str, timeout: float) -> dict:
    deadline = poller.clock() + timeout
    while True:
        found = db_instance(rds, poller, identifier)
        status = (found or {}).get("DBInstanceStatus", "missing")
        if status == "available":
            return found
        if status in ("failed", "incompatible-restore", "missing", "deleting"):
            raise StepFailed(f"The DR database {identifier} is {status}.")
        if poller.clock() > deadline:
            raise StepFailed(f"The DR database {identifier} was not available within {int(timeout)}s ({status}).")
        poller.log(f"DR database {identifier}: {status}.")
        poller.wait()


def upsert_record(route53, poller: Poller, zone: str, name: str, kind: str, ttl: int, target: str, comment: str) -> str:
    change = poller.call(
        route53.change_resource_record_sets,
        HostedZoneId=zone,
        ChangeBatch={
            "Comment": comment[:256],
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": kind,
                        "TTL": ttl,
                        "ResourceRecords": [{"Value": target}],
                    },
                }
            ],
        },
    )["ChangeInfo"]
    return change["Id"]


def delete_record(route53, poller: Poller, zone: str, name: str, kind: str) -> bool:
    current = record_value(route53, poller, zone, name, kind)
    if current is None:
        return False
    record = current["record"]
    poller.call(
        route53.change_resource_record_sets,
        HostedZoneId=zone,
        ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]},
    )
    return True


def wait_insync(route53, poller: Poller, change_id: str, timeout: float = 600) -> None:
    deadline = poller.clock() + timeout
    while True:
        status = poller.call(route53.get_change, Id=change_id)["ChangeInfo"]["Status"]
        if status == "INSYNC":
            return
        if poller.clock() > deadline:
            raise StepFailed(f"Route53 change {change_id} was not INSYNC within {int(timeout)}s.")
        poller.wait()


def record_value(route53, poller: Poller, zone: str, name: str, kind: str) -> dict | None:
    """{"value": ..., "record": the record set} for name/kind, or None when there is none."""
    found = poller.call(
        route53.list_resource_record_sets, HostedZoneId=zone, StartRecordName=name, StartRecordType=kind, MaxItems="1"
    ).get("ResourceRecordSets", [])
    wanted = name.rstrip(".") + "."
    for record in found:
        if record["Name"].rstrip(".") + "." == wanted and record["Type"] == kind:
            values = [r["Value"] for r in record.get("ResourceRecords", [])]
            return {"value": values[0] if values else "", "record": record}
    return None


def seconds_between(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


def monotonic() -> float:
    return time.monotonic()
