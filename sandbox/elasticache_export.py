"""A documented extension of moto's ElastiCache model: CopySnapshot, including the export to S3.

moto 5.2 has create_snapshot / describe_snapshots / delete_snapshot but no CopySnapshot, so a
Redis backup could never get past its export step in the sandbox. With this patch:

- copy_snapshot without TargetBucket copies the snapshot under the new name, as ElastiCache does;
- copy_snapshot with TargetBucket exports it: the bucket must exist in the snapshot's own region
  (ElastiCache's rule), and the object `<TargetSnapshotName>-0001.rdb` (one node group, so one
  file) is written into it at once, so the snapshot is back to `available` by the next poll. Its
  bytes are a small, well-formed RDB file holding one key that names the snapshot, not the
  cache's data (the sandbox has no Redis behind the cluster).

Errors follow the API reference: SnapshotNotFoundFault for an unknown source,
SnapshotAlreadyExistsFault for a name taken, InvalidParameterValue for a missing bucket or one in
another region.
"""

from __future__ import annotations

import copy

from moto.core.responses import ActionResult
from moto.elasticache import models as elasticache_models
from moto.elasticache import responses as elasticache_responses
from moto.elasticache.exceptions import InvalidParameterValueException, SnapshotAlreadyExists, SnapshotNotFound
from moto.s3.exceptions import MissingBucket
from moto.utilities.utils import get_partition


def _rdb_string(value: str) -> bytes:
    data = value.encode()[:63]
    return bytes([len(data)]) + data  # RDB's 6-bit length encoding: strings under 64 bytes


def fake_rdb(snapshot_name: str) -> bytes:
    """An RDB (version 11) file with one string key: magic, aux fields, db 0, the key, EOF and a
    zero checksum (which `redis-check-rdb` reads as "checksum disabled")."""
    return b"".join(
        [
            b"REDIS0011",
            b"\xfa" + _rdb_string("redis-ver") + _rdb_string("7.1.0"),
            b"\xfa" + _rdb_string("opsconsole-sandbox") + _rdb_string("1"),
            b"\xfe\x00",  # SELECTDB 0
            b"\xfb\x01\x00",  # RESIZEDB: one key, none expiring
            b"\x00" + _rdb_string("sandbox:snapshot") + _rdb_string(snapshot_name),
            b"\xff",
            b"\x00" * 8,
        ]
    )


def export_key(target_snapshot_name: str) -> str:
    return f"{target_snapshot_name}-0001.rdb"


def copy_snapshot(
    self,
    source_snapshot_name: str,
    target_snapshot_name: str,
    target_bucket: str | None = None,
    tags: list[dict[str, str]] | None = None,
):
    source = self.snapshots.get(source_snapshot_name)
    if source is None:
        raise SnapshotNotFound(source_snapshot_name)
    if target_bucket:
        _export(self, source, target_snapshot_name, target_bucket)
        return source
    if target_snapshot_name in self.snapshots:
        raise SnapshotAlreadyExists(target_snapshot_name)
    target = copy.copy(source)
    target.snapshot_name = target_snapshot_name
    target.snapshot_source = "manual"
    target.arn = source.arn.rsplit(":", 1)[0] + f":{target_snapshot_name}"
    target.tags = tags or []
    if tags:
        self.tagging_service.tag_resource(target.arn, tags)
    self.snapshots[target_snapshot_name] = target
    return target


def _export(backend, source, target_snapshot_name: str, bucket_name: str) -> None:
    from moto.s3.models import s3_backends

    s3 = s3_backends[backend.account_id][get_partition(backend.region_name)]
    try:
        bucket = s3.get_bucket(bucket_name)
    except MissingBucket:
        raise InvalidParameterValueException(f"The S3 bucket {bucket_name} does not exist.") from None
    if bucket.region_name != backend.region_name:
        raise InvalidParameterValueException(
            f"The S3 bucket {bucket_name} is in {bucket.region_name}; "
            f"ElastiCache exports only to a bucket in {backend.region_name}."
        )
    key = export_key(target_snapshot_name)
    if key in bucket.keys:
        raise SnapshotAlreadyExists(target_snapshot_name)
    s3.put_object(bucket_name, key, fake_rdb(source.snapshot_name))


def _copy_snapshot_response(self) -> ActionResult:
    snapshot = self.elasticache_backend.copy_snapshot(
        source_snapshot_name=self._get_param("SourceSnapshotName"),
        target_snapshot_name=self._get_param("TargetSnapshotName"),
        target_bucket=self._get_param("TargetBucket"),
        tags=self._get_param("Tags", []),
    )
    return ActionResult({"Snapshot": snapshot})


def install() -> None:
    elasticache_models.ElastiCacheBackend.copy_snapshot = copy_snapshot
    elasticache_responses.ElastiCacheResponse.copy_snapshot = _copy_snapshot_response
