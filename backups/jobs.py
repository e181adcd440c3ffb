"""The backup run kinds: pg_dump to S3, RDS snapshot, Redis snapshot, retention, verification
and restore.

Which take the environment's lock: only the restore (it creates what an operator will switch the
environment to, and must not interleave with a deploy). Backups, retention and verification only
read the environment or touch backup copies, so a nightly snapshot never holds up a deploy; a
pg_dump reads one consistent MVCC snapshot, so a concurrent migration cannot tear it.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from botocore.exceptions import ClientError
from django.utils import timezone

from backups import conf, credentials, postgres, s3stream
from backups.models import Backup, BackupPolicy, BackupStatus, Kind
from backups.services import expired, policy_validator, validate_restore
from opsconsole import aws
from opsconsole.access.models import Action
from opsconsole.audit.log import record
from opsconsole.aws import Poller
from opsconsole.runs.context import Canceled, RunContext, RunFailed
from opsconsole.runs.models import Run, Status
from opsconsole.runs.registry import run_kind

CONSOLE_TAG = {"Key": s3stream.CREATED_BY_TAG[0], "Value": s3stream.CREATED_BY_TAG[1]}


def _poller(ctx: RunContext) -> Poller:
    return Poller(log=ctx.log.info, interval=conf.poll_seconds(), check_cancel=ctx.check_cancel)


def _wait(ctx: RunContext, poller: Poller, what: str, probe, timeout: float | None = None):
    """Poll `probe()` (returns a truthy result when done, raises RunFailed on a dead end)."""
    deadline = time.monotonic() + (timeout or conf.wait_timeout_seconds())
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RunFailed(f"Timed out waiting for {what}.")
        poller.wait()


def _stamp(ctx: RunContext) -> str:
    return f"{timezone.now():%Y%m%d-%H%M%S}-run{ctx.run.pk}"


def _check_environment(ctx: RunContext) -> None:
    # A run's environment and its copied definition must agree: a grant in staging must not
    # reach a production policy through the API.
    if ctx.run.environment is None or ctx.run.environment.name != ctx.params["environment"]:
        raise RunFailed(f"This run's environment does not match the definition's ({ctx.params['environment']}).")


def _aws_failure(exc: ClientError, doing: str) -> RunFailed:
    error = exc.response.get("Error", {})
    return RunFailed(f"AWS refused to {doing}: {error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": "))


@contextmanager
def recording(ctx: RunContext):
    """A Backup row for this run: `running` now; `failed` with the reason if the body raises."""
    _check_environment(ctx)
    p = ctx.params
    backup = Backup.objects.create(
        policy=BackupPolicy.objects.filter(pk=p["policy"]).first(),
        policy_name=p["policy_name"],
        environment=ctx.run.environment,
        kind=p["kind"],
        run=ctx.run,
        region=p["aws_region"],
        bucket=p.get("bucket", ""),
    )
    try:
        yield backup
    except Canceled:
        backup.fail("Canceled by an operator.")
        raise
    except ClientError as exc:
        failure = _aws_failure(exc, "make the backup")
        backup.fail(ctx.writer.redact(str(failure)))
        raise failure from None
    except BaseException as exc:
        backup.fail(ctx.writer.redact(str(exc) or type(exc).__name__))  # masked like the run's error
        raise


def backup_notifies(previous: str | None, status: str, result: dict) -> str | None:
    """The notification event a backup run raises: only its failure is news."""
    return "backup.failed" if status in (Status.FAILED, Status.ERRORED) else None


def backup_notify_facts(run: Run) -> dict:
    """Which policy a notification about a backup run is about."""
    params = run.params or {}
    return {"policy": params.get("policy"), "policy_name": params.get("policy_name", "")}


# --- pg_dump -------------------------------------------------------------------------------------
CREDENTIALS = "Read the database credentials"
DUMP = "Dump into S3"
DR_COPY = "Copy to the DR region"


@run_kind(
    "backups.pg_dump",
    "pg_dump to S3",
    action=Action.BACKUP,
    locks_environment=False,
    validate=policy_validator(Kind.PG_DUMP),
    notifies=backup_notifies,
    notify_facts=backup_notify_facts,
)
def pg_dump(ctx: RunContext) -> dict:
    p = ctx.params
    ctx.plan([CREDENTIALS, DUMP, DR_COPY])
    with recording(ctx) as backup:
        with ctx.step(CREDENTIALS):
            try:
                conn = credentials.resolve(p, p["aws_region"], p["role_arn"])
            except credentials.CredentialsUnavailable as exc:
                raise RunFailed(str(exc)) from None
            ctx.add_secret(conn.password)
        key = f"{p['prefix']}{p['environment']}/{p['policy']}/{_stamp(ctx)}.dump"
        s3 = aws.client("s3", p["aws_region"], p["role_arn"])
        with ctx.step(DUMP):
            ctx.log.info("pg_dump -Fc of %s on %s into s3://%s/%s", conn.dbname, conn.host, p["bucket"], key)
            Backup.objects.filter(pk=backup.pk).update(identifier=key)
            try:
                uploaded = postgres.dump_to_s3(
                    conn,
                    s3,
                    p["bucket"],
                    key,
                    part_size=conf.part_size(),
                    kms_key_id=conf.kms_key_for(p["aws_region"]),
                    check_cancel=ctx.check_cancel,
                    tags={"environment": p["environment"], "run": str(ctx.run.pk)},
                )
            except s3stream.StreamAborted as exc:
                raise RunFailed(f"The dump failed and its upload was aborted (no object was left): {exc}") from None
            except postgres.UnsafeClient as exc:
                raise RunFailed(str(exc)) from None
            ctx.log.info("Uploaded %d bytes in %d part(s), SHA-256 %s.", uploaded.size, uploaded.parts, uploaded.sha256)
        backup.identifier, backup.size_bytes, backup.sha256 = key, uploaded.size, uploaded.sha256
        backup.save(update_fields=["identifier", "size_bytes", "sha256"])
        dr = _copy_objects_to_dr(ctx, s3, [key])
        backup.succeed(**dr)
    return {"backup": backup.pk, "location": backup.location, "size_bytes": uploaded.size, "sha256": uploaded.sha256}


def _copy_objects_to_dr(ctx: RunContext, s3, keys: list[str]) -> dict:
    p = ctx.params
    if not p["copy_to_dr"]:
        ctx.skip_step(DR_COPY, "the policy keeps no DR copy")
        return {}
    with ctx.step(DR_COPY):
        target = aws.client("s3", p["dr_region"], p["role_arn"])
        for key in keys:
            s3stream.copy_object(
                s3, p["bucket"], key, target, p["dr_bucket"], kms_key_id=conf.kms_key_for(p["dr_region"])
            )
        ctx.log.info("Copied %d object(s) to s3://%s (%s).", len(keys), p["dr_bucket"], p["dr_region"])
    return {"dr_region": p["dr_region"], "dr_bucket": p["dr_bucket"], "dr_identifier": keys[0]}


# --- RDS snapshot --------------------------------------------------------------------------------
SNAPSHOT = "Create the snapshot"
SNAPSHOT_WAIT = "Wait until it is available"


def _snapshot_probe(rds, snapshot_id: str):
    def probe():
        found = rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"][0]
        if found["Status"] == "available":
            return found
        if found["Status"] in ("failed", "deleted", "deleting"):
            raise RunFailed(f"Snapshot {snapshot_id} ended {found['Status']}.")
        return None

    return probe


@run_kind(
    "backups.rds_snapshot",
    "RDS snapshot",
    action=Action.BACKUP,
    locks_environment=False,
    validate=policy_validator(Kind.RDS_SNAPSHOT),
    notifies=backup_notifies,
    notify_facts=backup_notify_facts,
)
def rds_snapshot(ctx: RunContext) -> dict:
    p = ctx.params
    ctx.plan([SNAPSHOT, SNAPSHOT_WAIT, DR_COPY])
    poller = _poller(ctx)
    rds = aws.client("rds", p["aws_region"], p["role_arn"])
    snapshot_id = f"opsconsole-{p['environment']}-{_stamp(ctx)}"
    tags = [CONSOLE_TAG, {"Key": "environment", "Value": p["environment"]}, {"Key": "run", "Value": str(ctx.run.pk)}]
    with recording(ctx) as backup:
        with ctx.step(SNAPSHOT):
            poller.call(
                rds.create_db_snapshot,
                DBInstanceIdentifier=p["source_identifier"],
                DBSnapshotIdentifier=snapshot_id,
                Tags=tags,
            )
            Backup.objects.filter(pk=backup.pk).update(identifier=snapshot_id)
            ctx.log.info("Creating snapshot %s of %s.", snapshot_id, p["source_identifier"])
        with ctx.step(SNAPSHOT_WAIT):
            found = _wait(ctx, poller, f"snapshot {snapshot_id}", _snapshot_probe(rds, snapshot_id))
        backup.identifier = snapshot_id
        backup.size_bytes = int(found.get("AllocatedStorage", 0)) * 1024**3
        dr = {}
        if not p["copy_to_dr"]:
            ctx.skip_step(DR_COPY, "the policy keeps no DR copy")
        else:
            with ctx.step(DR_COPY):
                target = aws.client("rds", p["dr_region"], p["role_arn"])
                extra = {"KmsKeyId": key} if (key := conf.kms_key_for(p["dr_region"])) else {}
                poller.call(
                    target.copy_db_snapshot,
                    SourceDBSnapshotIdentifier=found["DBSnapshotArn"],
                    TargetDBSnapshotIdentifier=snapshot_id,
                    SourceRegion=p["aws_region"],
                    Tags=tags,
                    **extra,
                )
                _wait(ctx, poller, f"the DR copy in {p['dr_region']}", _snapshot_probe(target, snapshot_id))
                ctx.log.info("Copied to %s as %s.", p["dr_region"], snapshot_id)
                dr = {"dr_region": p["dr_region"], "dr_identifier": snapshot_id}
        backup.succeed(**dr)
    return {"backup": backup.pk, "snapshot": snapshot_id, "dr": dr.get("dr_identifier", "")}


# --- Redis snapshot ------------------------------------------------------------------------------
EXPORT = "Export to S3"


def export_name(prefix: str, snapshot_name: str) -> str:
    """The TargetSnapshotName of a snapshot's export: the policy's prefix flattened into the name,
    since ElastiCache names the exported objects after it (`<name>-0001.rdb`, one per shard)."""
    return f"{prefix}{snapshot_name}".replace("/", "-")


def export_objects(s3, bucket: str, name: str) -> list[dict]:
    """The objects of one export. A listing by prefix also finds longer names (the export of run 1
    is a prefix of run 10's), so only `<name>.<ext>` and `<name>-<shard>...` count."""
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=name):
        found += [o for o in page.get("Contents", []) if o["Key"] == name or o["Key"][len(name)] in "-."]
    return found


@run_kind(
    "backups.redis_snapshot",
    "Redis snapshot",
    action=Action.BACKUP,
    locks_environment=False,
    validate=policy_validator(Kind.REDIS_SNAPSHOT),
    notifies=backup_notifies,
    notify_facts=backup_notify_facts,
)
def redis_snapshot(ctx: RunContext) -> dict:
    p = ctx.params
    ctx.plan([SNAPSHOT, SNAPSHOT_WAIT, EXPORT, DR_COPY])
    poller = _poller(ctx)
    elasticache = aws.client("elasticache", p["aws_region"], p["role_arn"])
    s3 = aws.client("s3", p["aws_region"], p["role_arn"])
    name = f"opsconsole-{p['environment']}-{_stamp(ctx)}"
    exported_as = export_name(p["prefix"], name)
    with recording(ctx) as backup:
        with ctx.step(SNAPSHOT):
            try:
                poller.call(elasticache.describe_replication_groups, ReplicationGroupId=p["source_identifier"])
                source = {"ReplicationGroupId": p["source_identifier"]}
            except ClientError as exc:
                # Only "no such group" means the source is a single cache cluster; anything else
                # (access denied, throttled past the retries) is the run's failure.
                if aws.error_code(exc) != "ReplicationGroupNotFoundFault":
                    raise
                source = {"CacheClusterId": p["source_identifier"]}
            poller.call(elasticache.create_snapshot, SnapshotName=name, Tags=[CONSOLE_TAG], **source)
            Backup.objects.filter(pk=backup.pk).update(identifier=name)
            ctx.log.info("Creating snapshot %s of %s.", name, p["source_identifier"])

        def snapshot_status() -> str:
            found = poller.call(elasticache.describe_snapshots, SnapshotName=name)["Snapshots"]
            status = found[0].get("SnapshotStatus", "") if found else "missing"
            if status in ("failed", "deleting", "missing"):
                raise RunFailed(f"Snapshot {name} of {p['source_identifier']} ended {status}.")
            return status

        with ctx.step(SNAPSHOT_WAIT):
            _wait(ctx, poller, f"snapshot {name}", lambda: snapshot_status() == "available")
        with ctx.step(EXPORT):
            # ElastiCache exports only to a bucket in the snapshot's own region. The snapshot is
            # `exporting` until the objects are written; both are waited for.
            poller.call(
                elasticache.copy_snapshot,
                SourceSnapshotName=name,
                TargetSnapshotName=exported_as,
                TargetBucket=p["bucket"],
            )

            def exported():
                if snapshot_status() != "available":
                    return None
                return export_objects(s3, p["bucket"], exported_as) or None

            objects = _wait(ctx, poller, f"the export to s3://{p['bucket']}", exported)
            keys = [o["Key"] for o in objects]
            checksums = []
            for key in keys:
                sha256, _, _ = s3stream.object_sha256(s3, p["bucket"], key)
                checksums.append(sha256)
                s3.put_object_tagging(Bucket=p["bucket"], Key=key, Tagging=s3stream.tagging(sha256))
            ctx.log.info("Exported %s to s3://%s (%s).", name, p["bucket"], ", ".join(keys))
        backup.identifier = name
        backup.size_bytes = sum(o.get("Size", 0) for o in objects)
        backup.sha256 = checksums[0] if len(checksums) == 1 else ""  # one checksum per object: on the tags
        backup.save(update_fields=["identifier", "size_bytes", "sha256"])
        dr = _copy_objects_to_dr(ctx, s3, keys)
        backup.succeed(**({**dr, "dr_identifier": exported_as} if dr else {}))
    return {"backup": backup.pk, "snapshot": name, "objects": keys}


# --- Retention -----------------------------------------------------------------------------------
def _redis_export_name(backup: Backup) -> str:
    """The export's name: recorded as the DR identifier when there is a DR copy, otherwise derived
    from the prefix its run was launched with (the snapshot name alone matches no object)."""
    if backup.dr_identifier:
        return backup.dr_identifier
    prefix = backup.run.params.get("prefix", "") if backup.run else ""
    return export_name(prefix, backup.identifier)


def _delete_copies(backup: Backup, role_arn: str) -> list[str]:
    """Delete the backup's copies that the console made; returns what was deleted."""
    done = []
    places = [(backup.region, backup.bucket, backup.identifier)]
    if backup.dr_region and backup.dr_identifier:
        places.append((backup.dr_region, backup.dr_bucket, backup.dr_identifier))
    for region, bucket, identifier in places:
        if backup.kind == Kind.RDS_SNAPSHOT:
            rds = aws.client("rds", region, role_arn)
            try:
                snapshot = rds.describe_db_snapshots(DBSnapshotIdentifier=identifier)["DBSnapshots"][0]
            except ClientError as exc:
                if aws.error_code(exc) == "DBSnapshotNotFound":
                    continue
                raise
            tags = rds.list_tags_for_resource(ResourceName=snapshot["DBSnapshotArn"])["TagList"]
            if CONSOLE_TAG not in tags:
                continue  # not ours: never deleted
            rds.delete_db_snapshot(DBSnapshotIdentifier=identifier)
            done.append(f"{region}:{identifier}")
        elif backup.kind == Kind.PG_DUMP:
            if s3stream.delete_object(aws.client("s3", region, role_arn), bucket, identifier):
                done.append(f"s3://{bucket}/{identifier}")
        else:
            s3 = aws.client("s3", region, role_arn)
            if region == backup.region:
                try:
                    aws.client("elasticache", region, role_arn).delete_snapshot(SnapshotName=identifier)
                    done.append(f"{region}:{identifier}")
                except ClientError as exc:
                    if "NotFound" not in aws.error_code(exc):
                        raise
            for obj in export_objects(s3, bucket, _redis_export_name(backup)):
                if s3stream.delete_object(s3, bucket, obj["Key"]):
                    done.append(f"s3://{bucket}/{obj['Key']}")
    return done


def takes_nothing(params: dict, environment) -> dict:
    if params:
        raise ValueError(f"Backup retention takes no parameters ({', '.join(sorted(map(str, params)))} given).")
    return {}


@run_kind(
    "backups.retention", "Backup retention", action=Action.BACKUP, locks_environment=False, validate=takes_nothing
)
def retention(ctx: RunContext) -> dict:
    environment = ctx.run.environment
    now = timezone.now()
    deleted, problems = [], []
    for policy in BackupPolicy.objects.filter(environment=environment):
        candidates = list(policy.backups.filter(status=BackupStatus.AVAILABLE, created_by_console=True))
        doomed = expired(candidates, policy.retention_days, policy.min_copies, now)
        ctx.log.info(
            "%s: %d available, %d past %d days and beyond the newest %d.",
            policy.name,
            len(candidates),
            len(doomed),
            policy.retention_days,
            max(policy.min_copies, 1),
        )
        for backup in doomed:
            ctx.check_cancel()
            try:
                removed = _delete_copies(backup, environment.role_arn)
            except ClientError as exc:
                problems.append(f"backup #{backup.pk}: {aws.error_code(exc)}")
                ctx.log.warning("Could not delete backup #%d: %s", backup.pk, exc)
                continue
            backup.mark_deleted()
            record(
                "backups.backup.deleted",
                actor_name="retention",
                target=f"backup:{backup.pk}",
                environment=environment.name,
                details={
                    "run": ctx.run.pk,
                    "policy": policy.pk,
                    "removed": removed,
                    "age_days": (now - backup.finished_at).days,
                },
            )
            ctx.log.info("Deleted backup #%d (%s).", backup.pk, ", ".join(removed) or "no copies were left")
            deleted.append(backup.pk)
    if problems:
        raise RunFailed(
            f"Deleted {len(deleted)} backup(s); {len(problems)} could not be deleted: {'; '.join(problems)}"
        )
    return {"deleted": deleted}


# --- Verification --------------------------------------------------------------------------------
CHECKSUM = "Check the checksum"
RESTORE = "Restore into a scratch database"
ROWS = "Check the tables hold rows"
DROP = "Drop the scratch database"


def validate_verify(params: dict, environment) -> dict:
    """Optionally one backup of the run's environment to test (default: its newest dump)."""
    backup = params.get("backup")
    if backup in (None, ""):
        return {}
    try:
        backup = int(backup)
    except (TypeError, ValueError):
        raise ValueError("backup must be a backup id.") from None
    if not Backup.objects.filter(pk=backup, environment=environment).exists():
        raise ValueError(f"There is no backup #{backup} in {environment}.")
    return {"backup": backup}


def verify_notifies(previous: str | None, status: str, result: dict) -> str | None:
    """The notification event a restore verification raises: only its failure is news."""
    return "restore.verify_failed" if status in (Status.FAILED, Status.ERRORED) else None


@run_kind(
    "backups.verify",
    "Verify a restore",
    action=Action.BACKUP,
    locks_environment=False,
    validate=validate_verify,
    notifies=verify_notifies,
)
def verify(ctx: RunContext) -> dict:
    good = Backup.objects.available().filter(environment=ctx.run.environment, kind=Kind.PG_DUMP).exclude(policy=None)
    backup = good.filter(pk=ctx.params["backup"]).first() if ctx.params.get("backup") else good.first()
    if backup is None:
        raise RunFailed(f"{ctx.run.environment} has no available pg_dump backup to verify.")
    definition = backup.policy.definition()
    ctx.plan([CREDENTIALS, CHECKSUM, RESTORE, ROWS, DROP])
    ctx.log.info("Verifying backup #%d (%s).", backup.pk, backup.location)
    scratch = f"opsconsole_verify_{backup.pk}_{ctx.run.pk}"
    s3 = aws.client("s3", backup.region, definition["role_arn"])
    created = False
    try:
        with ctx.step(CREDENTIALS):
            try:
                conn = credentials.resolve(definition, backup.region, definition["role_arn"])
            except credentials.CredentialsUnavailable as exc:
                # Says nothing about whether the backup restores: the backup's record is left as it is.
                raise RunFailed(f"Verification of backup #{backup.pk} could not start: {exc}") from None
            ctx.add_secret(conn.password)
        with ctx.step(CHECKSUM):
            postgres.verify_checksum(s3, backup.bucket, backup.identifier, backup.sha256)
        with ctx.step(RESTORE):
            postgres.create_database(conn, scratch)
            created = True
            postgres.restore_from_s3(
                conn, scratch, s3, backup.bucket, backup.identifier, backup.sha256, check_cancel=ctx.check_cancel
            )
        with ctx.step(ROWS):
            counts = postgres.table_row_counts(conn, scratch)
            with_rows = {table: rows for table, rows in counts.items() if rows}
            ctx.log.info("%d table(s), %d with rows.", len(counts), len(with_rows), extra={"data": counts})
            if not with_rows:
                raise postgres.RestoreFailed("The restore holds no rows in any table.")
    except postgres.UnsafeClient as exc:
        raise RunFailed(f"Verification of backup #{backup.pk} could not start: {exc}") from None
    except (postgres.ChecksumMismatch, postgres.RestoreFailed, ClientError) as exc:
        backup.record_verification(False, str(exc))
        raise RunFailed(f"Verification of backup #{backup.pk} failed: {exc}") from None
    finally:
        if created:
            with ctx.step(DROP):
                postgres.drop_database(conn, scratch)
        else:
            ctx.skip_step(DROP, "nothing was created")
    detail = f"{len(counts)} tables, {sum(counts.values())} rows restored into a scratch database"
    backup.record_verification(True, detail)
    return {"backup": backup.pk, "tables": len(counts), "rows": sum(counts.values())}


# --- Restore -------------------------------------------------------------------------------------
@run_kind(
    "backups.restore",
    "Restore a backup",
    action=Action.BACKUP,
    locks_environment=True,
    validate=validate_restore,
    # The target's name typed twice is checked by backups.services.request_restore.
    only_through="the Backups page's Restore… form, which asks for the target's name twice",
)
def restore(ctx: RunContext) -> dict:
    p = ctx.params
    _check_environment(ctx)
    if p["kind"] == Kind.RDS_SNAPSHOT:
        return _restore_rds(ctx)
    ctx.plan([CREDENTIALS, CHECKSUM, RESTORE])
    s3 = aws.client("s3", p["aws_region"], p["role_arn"])
    with ctx.step(CREDENTIALS):
        try:
            conn = credentials.resolve(p, p["aws_region"], p["role_arn"])
        except credentials.CredentialsUnavailable as exc:
            raise RunFailed(str(exc)) from None
        ctx.add_secret(conn.password)
    try:
        with ctx.step(CHECKSUM):
            postgres.verify_checksum(s3, p["bucket"], p["identifier"], p["sha256"])
            ctx.log.info("s3://%s/%s matches its SHA-256.", p["bucket"], p["identifier"])
        with ctx.step(RESTORE):
            postgres.create_database(conn, p["target"])
            try:
                postgres.restore_from_s3(
                    conn, p["target"], s3, p["bucket"], p["identifier"], p["sha256"], check_cancel=ctx.check_cancel
                )
            except BaseException:
                ctx.log.warning("Dropping the half-restored database %s.", p["target"])
                postgres.drop_database(conn, p["target"])
                raise
    except (postgres.ChecksumMismatch, postgres.RestoreFailed, postgres.UnsafeClient) as exc:
        raise RunFailed(str(exc)) from None
    ctx.log.info("Restored backup #%d into database %s on %s.", p["backup"], p["target"], conn.host)
    return {"backup": p["backup"], "database": p["target"]}


def _restore_rds(ctx: RunContext) -> dict:
    p = ctx.params
    ctx.plan([RESTORE, SNAPSHOT_WAIT])
    poller = _poller(ctx)
    rds = aws.client("rds", p["aws_region"], p["role_arn"])

    def available():
        found = rds.describe_db_instances(DBInstanceIdentifier=p["target"])["DBInstances"][0]
        if found["DBInstanceStatus"] in ("failed", "incompatible-restore"):
            raise RunFailed(f"Instance {p['target']} ended {found['DBInstanceStatus']}.")
        return found if found["DBInstanceStatus"] == "available" else None

    try:
        with ctx.step(RESTORE):
            poller.call(
                rds.restore_db_instance_from_db_snapshot,
                DBInstanceIdentifier=p["target"],
                DBSnapshotIdentifier=p["identifier"],
                Tags=[CONSOLE_TAG, {"Key": "restored-from", "Value": p["identifier"]}],
            )
        with ctx.step(SNAPSHOT_WAIT):
            found = _wait(ctx, poller, f"instance {p['target']}", available)
    except ClientError as exc:
        raise _aws_failure(exc, f"restore {p['identifier']} into {p['target']}") from None
    endpoint = found.get("Endpoint", {}).get("Address", "")
    ctx.log.info("Restored snapshot %s into the new instance %s (%s).", p["identifier"], p["target"], endpoint)
    return {"backup": p["backup"], "instance": p["target"], "endpoint": endpoint}
