"""Verification: the newest dump is restored into a scratch database, checked and dropped."""

import pytest

from backups.models import Verification
from backups.services import request_backup
from opsconsole.runs.models import Status
from opsconsole.runs.services import launch
from sandbox.bootstrap import BACKUP_BUCKETS, REGION
from tests.backups.conftest import admin_connection, s3

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def scratch_databases() -> list[str]:
    with admin_connection() as db:
        return [r[0] for r in db.execute("SELECT datname FROM pg_database WHERE datname LIKE 'opsconsole_verify_%'")]


def test_the_newest_dump_is_verified_and_the_scratch_database_dropped(users, pg_policy, staging):
    backup = request_backup(pg_policy, users["backup_operator"]).backup
    run = launch("backups.verify", environment=staging, check_permission=False)
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, (run.error, list(run.events.values_list("message", flat=True)))
    backup.refresh_from_db()
    assert backup.verification == Verification.PASSED and backup.verified_at
    assert "550 rows" in backup.verification_detail
    assert scratch_databases() == []


def test_a_corrupted_dump_fails_verification(users, pg_policy, staging):
    backup = request_backup(pg_policy, users["backup_operator"]).backup
    s3().put_object(Bucket=BACKUP_BUCKETS[REGION], Key=backup.identifier, Body=b"PGDMP not really")
    run = launch("backups.verify", environment=staging, check_permission=False)
    run.refresh_from_db()
    assert run.status == Status.FAILED
    backup.refresh_from_db()
    assert backup.verification == Verification.FAILED and "does not match" in backup.verification_detail
    assert scratch_databases() == []
