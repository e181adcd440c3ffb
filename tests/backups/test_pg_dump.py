"""pg_dump runs: the real pg_dump streamed into a moto S3 multipart upload, checksummed, copied to
the DR region; a failed or killed pg_dump leaves no object behind."""

import hashlib
import os
import signal
import subprocess

import pytest

from backups import postgres, s3stream
from backups.models import BackupStatus
from backups.services import request_backup
from opsconsole.runs.models import RunEvent, Status
from sandbox.bootstrap import BACKUP_BUCKETS, DR_REGION, REGION
from tests.backups.conftest import s3, server

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_dump_is_streamed_to_s3_with_its_checksum_and_copied_to_dr(users, pg_policy):
    run = request_backup(pg_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, (run.error, list(run.events.values_list("message", flat=True)))
    backup = run.backup
    assert backup.status == BackupStatus.AVAILABLE
    body = s3().get_object(Bucket=BACKUP_BUCKETS[REGION], Key=backup.identifier)
    data = body["Body"].read()
    assert data.startswith(b"PGDMP")  # pg_dump's custom format
    assert backup.size_bytes == len(data)
    assert backup.sha256 == hashlib.sha256(data).hexdigest()
    assert body["ServerSideEncryption"] in ("AES256", "aws:kms")
    tags = s3stream.object_tags(s3(), BACKUP_BUCKETS[REGION], backup.identifier)
    assert tags["sha256"] == backup.sha256 and tags["created-by"] == "opsconsole"
    copy = s3(DR_REGION).get_object(Bucket=BACKUP_BUCKETS[DR_REGION], Key=backup.identifier)["Body"].read()
    assert copy == data
    assert backup.dr_region == DR_REGION and backup.dr_identifier == backup.identifier
    assert run.params["database_name"] == pg_policy.database_name  # the definition copied at launch


def test_the_password_reaches_pg_dump_only_through_its_environment(users, pg_policy, password_protected, monkeypatch):
    front = password_protected(pg_policy, "s3cr3t-hunter2-value")
    seen = []
    real_popen = subprocess.Popen

    def spy(argv, **kwargs):
        seen.append((argv, kwargs.get("env", {})))
        return real_popen(argv, **kwargs)

    monkeypatch.setattr(postgres.subprocess, "Popen", spy)
    run = request_backup(pg_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    # The server checked the password (SCRAM over TLS, bound to the channel): it really was used.
    assert front.seen and all(c.authenticated and c.mechanism == "SCRAM-SHA-256-PLUS" for c in front.seen)
    argv, env = next((argv, env) for argv, env in seen if argv[0] == "pg_dump" and "--version" not in argv)
    assert "s3cr3t-hunter2-value" not in " ".join(argv)
    assert env["PGPASSWORD"] == "s3cr3t-hunter2-value"
    assert "AWS_SECRET_ACCESS_KEY" not in env  # the child gets libpq's variables, nothing else
    assert not RunEvent.objects.filter(message__contains="s3cr3t-hunter2-value").exists()
    assert "s3cr3t" not in str(run.params)


def test_a_failing_pg_dump_aborts_the_upload_and_leaves_no_object(users, pg_policy):
    pg_policy.database_name = "h6_no_such_database"
    pg_policy.save()
    run = request_backup(pg_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "upload was aborted" in run.error and "does not exist" in run.error
    assert run.backup.status == BackupStatus.FAILED
    listing = s3().list_objects_v2(Bucket=BACKUP_BUCKETS[REGION], Prefix="database/")
    assert listing.get("KeyCount", 0) == 0
    assert not s3().list_multipart_uploads(Bucket=BACKUP_BUCKETS[REGION]).get("Uploads")


def test_a_killed_pg_dump_leaves_no_object(stack, source_db):
    """pg_dump killed after it has produced output: the parts already uploaded are discarded."""
    db = server()
    conn = postgres.Connection(db["host"], db["port"], source_db, db["user"])
    bucket = BACKUP_BUCKETS[REGION]
    with pytest.raises(s3stream.StreamAborted, match="killed by SIGKILL"):
        postgres.dump_to_s3(
            conn,
            s3(),
            bucket,
            "database/killed.dump",
            on_start=lambda process: os.kill(process.pid, signal.SIGKILL),
        )
    assert s3().list_objects_v2(Bucket=bucket, Prefix="database/").get("KeyCount", 0) == 0
    assert not s3().list_multipart_uploads(Bucket=bucket).get("Uploads")


class Exploding:
    """A producer stream that yields one full part, then breaks mid-stream."""

    def __init__(self):
        self.calls = 0

    def read(self, size):
        self.calls += 1
        if self.calls == 1:
            return b"x" * size
        raise OSError("the pipe broke")


def test_an_upload_interrupted_mid_stream_is_aborted(stack):
    bucket = BACKUP_BUCKETS[REGION]
    with pytest.raises(OSError, match="the pipe broke"):
        s3stream.upload_stream(Exploding(), s3(), bucket, "database/broken.dump", part_size=s3stream.MIN_PART_SIZE)
    assert s3().list_objects_v2(Bucket=bucket, Prefix="database/").get("KeyCount", 0) == 0
    assert not s3().list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_a_large_stream_is_uploaded_in_parts_with_the_right_checksum(stack):
    import io

    payload = os.urandom(3 * s3stream.MIN_PART_SIZE + 12345)
    uploaded = s3stream.upload_stream(
        io.BytesIO(payload), s3(), BACKUP_BUCKETS[REGION], "database/big.bin", part_size=s3stream.MIN_PART_SIZE
    )
    assert uploaded.parts == 4 and uploaded.size == len(payload)
    assert uploaded.sha256 == hashlib.sha256(payload).hexdigest()
    assert s3().get_object(Bucket=BACKUP_BUCKETS[REGION], Key="database/big.bin")["Body"].read() == payload
