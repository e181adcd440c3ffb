"""The database password is only ever answered to SCRAM-SHA-256: a server (or anyone in between)
that asks for it in clear text or as MD5 gets nothing, from psycopg, pg_dump or pg_restore, and
the run fails saying why. Shown with real clients against a real socket (tests/backups/fakepg.py):
the server records every byte the client sends after asking. And a real password still works:
the test PostgreSQL behind a front that checks it with SCRAM over TLS."""

import os
import stat

import psycopg
import pytest

from backups import postgres
from backups.models import BackupPolicy, BackupStatus
from backups.postgres import Connection, UnsafeClient, password_guard
from backups.services import request_backup, request_verification
from opsconsole.runs.models import RunEvent, Status
from sandbox.bootstrap import BACKUP_BUCKETS, REGION
from tests.backups.conftest import PASSWORD_VARIABLE, s3, server
from tests.backups.fakepg import FakePostgres

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "hunter2-the-database-password"
HOSTILE = ["cleartext", "md5"]


def assert_nothing_was_sent(server: FakePostgres) -> None:
    assert server.seen, "the client never connected: the test proves nothing"
    for seen in server.seen:
        assert seen.asked in HOSTILE
        assert PASSWORD.encode() not in seen.answer, f"the password was sent: {seen.answer!r}"
        # No PasswordMessage at all: an MD5 answer, crackable offline, does not hold the password itself.
        assert not seen.answer.startswith(b"p"), f"a password message was sent: {seen.answer!r}"


def refusal_of(client: str) -> str:
    """What libpq says when it refuses, by the client's libpq version (see password_guard)."""
    if client == "psycopg" or postgres.client_major(client) >= 16:
        return 'authentication method requirement "scram-sha-256" failed'
    return "channel binding required but not supported by server's authentication request"


@pytest.mark.parametrize("asks", HOSTILE)
def test_psycopg_never_answers_a_request_for_the_password_in_clear_or_as_md5(asks):
    with FakePostgres(asks) as hostile:
        with pytest.raises(psycopg.OperationalError) as refused:
            Connection("127.0.0.1", hostile.port, "app", "backup", PASSWORD).connect()
    assert_nothing_was_sent(hostile)
    assert refusal_of("psycopg") in str(refused.value)


@pytest.mark.parametrize("asks", HOSTILE)
def test_nor_does_the_pg_dump_run(users, pg_policy, monkeypatch, asks):
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    with FakePostgres(asks) as hostile:
        BackupPolicy.objects.filter(pk=pg_policy.pk).update(
            database_host="127.0.0.1", database_port=hostile.port, password_source=f"env:{PASSWORD_VARIABLE}"
        )
        run = request_backup(pg_policy, users["backup_operator"])
    run.refresh_from_db()
    assert_nothing_was_sent(hostile)
    assert run.status == Status.FAILED
    assert run.error.startswith("The dump failed and its upload was aborted (no object was left): pg_dump exited")
    assert refusal_of("pg_dump") in run.error
    assert run.backup.status == BackupStatus.FAILED
    assert s3().list_objects_v2(Bucket=BACKUP_BUCKETS[REGION], Prefix="database/").get("KeyCount", 0) == 0
    assert not RunEvent.objects.filter(message__contains=PASSWORD).exists()


@pytest.mark.parametrize("asks", HOSTILE)
def test_nor_pg_restore(stack, source_db, asks):
    bucket, key = BACKUP_BUCKETS[REGION], "database/any.dump"
    db = server()
    dumped = postgres.dump_to_s3(Connection(db["host"], db["port"], source_db, db["user"]), s3(), bucket, key)
    with FakePostgres(asks) as hostile:
        conn = Connection("127.0.0.1", hostile.port, "app", "backup", PASSWORD)
        with pytest.raises(postgres.RestoreFailed) as refused:
            postgres.restore_from_s3(conn, "app_restore", s3(), bucket, key, dumped.sha256)
    assert_nothing_was_sent(hostile)
    assert refusal_of("pg_restore") in str(refused.value)


@pytest.mark.parametrize("asks", HOSTILE)
def test_with_no_password_the_worker_s_own_are_not_sent_either(monkeypatch, asks):
    """libpq falls back on PGPASSWORD and ~/.pgpass: never for a policy without a password."""
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    with FakePostgres(asks) as hostile:
        with pytest.raises(psycopg.OperationalError, match="!password,!md5,!scram-sha-256"):
            Connection("127.0.0.1", hostile.port, "app", "backup").connect()
        conn = Connection("127.0.0.1", hostile.port, "app", "backup")
        assert "PGPASSWORD" not in conn.child_environment()
    assert_nothing_was_sent(hostile)


def test_a_real_password_works_through_scram_over_tls_for_backup_and_verification(
    users, pg_policy, password_protected, scratch_names
):
    front = password_protected(pg_policy, PASSWORD)
    run = request_backup(pg_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    verify = request_verification(run.backup, users["backup_operator"])
    verify.refresh_from_db()
    assert verify.status == Status.SUCCEEDED, verify.error
    # pg_dump, then psycopg (scratch database, row counts) and pg_restore: every connection
    # proved the password with SCRAM bound to the TLS channel.
    assert len(front.seen) >= 4
    assert all(seen.tls and seen.authenticated and seen.mechanism == "SCRAM-SHA-256-PLUS" for seen in front.seen)


def test_a_wrong_password_fails_the_run(users, pg_policy, password_protected, monkeypatch):
    password_protected(pg_policy, PASSWORD)
    monkeypatch.setenv(PASSWORD_VARIABLE, "not-the-password")
    run = request_backup(pg_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert 'password authentication failed for user "' in run.error
    assert "not-the-password" not in run.error


def test_verify_full_checks_the_server_against_the_configured_ca(users, pg_policy, password_protected, settings):
    front = password_protected(pg_policy, PASSWORD)
    settings.BACKUP_DB_SSLMODE = "verify-full"
    settings.BACKUP_DB_SSLROOTCERT = str(front.certificate)
    run = request_backup(pg_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error

    settings.BACKUP_DB_SSLROOTCERT = "/nonexistent/ca.crt"  # a server it cannot check is not trusted
    run = request_backup(pg_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.FAILED and "/nonexistent/ca.crt" in run.error


@pytest.mark.parametrize(
    "libpq, sslmode, expected",
    [
        (18, "prefer", {"require_auth": "scram-sha-256"}),
        (16, "disable", {"require_auth": "scram-sha-256"}),  # SCRAM never shows the password, TLS or not
        (15, "prefer", {"channel_binding": "require"}),
        (13, "verify-full", {"channel_binding": "require"}),
    ],
)
def test_each_client_gets_the_option_its_libpq_knows(libpq, sslmode, expected):
    assert password_guard(libpq, sslmode, password=True) == expected


@pytest.mark.parametrize(
    "libpq, sslmode, says",
    [
        (15, "disable", "BACKUP_DB_SSLMODE=disable rules out"),
        (12, "verify-full", "cannot refuse to send the database password in clear text"),
    ],
)
def test_a_client_that_cannot_refuse_gets_no_password(libpq, sslmode, says):
    with pytest.raises(UnsafeClient, match=says):
        password_guard(libpq, sslmode, password=True)
    assert password_guard(libpq, sslmode, password=False) == {}  # nothing to protect


def test_pg_dump_16_gets_pgrequireauth_and_older_ones_channel_binding(monkeypatch):
    """libpq 15 ignores a PGREQUIREAUTH it does not know, silently: the version decides."""
    conn = Connection("db.internal", 5432, "app", "backup", PASSWORD, sslmode="verify-full", sslrootcert="/ca.crt")
    monkeypatch.setattr(postgres, "client_major", lambda program: 17)
    env = conn.child_environment()
    assert (env["PGREQUIREAUTH"], env["PGSSLMODE"], env["PGSSLROOTCERT"]) == ("scram-sha-256", "verify-full", "/ca.crt")
    assert "PGCHANNELBINDING" not in env
    monkeypatch.setattr(postgres, "client_major", lambda program: 15)
    env = conn.child_environment()
    assert env["PGCHANNELBINDING"] == "require" and "PGREQUIREAUTH" not in env


def test_the_client_s_version_is_read_from_the_program(tmp_path):
    old = tmp_path / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 12.22'\n")
    old.chmod(old.stat().st_mode | stat.S_IXUSR)
    assert postgres.client_major(str(old)) == 12
    conn = Connection("127.0.0.1", 5432, "app", "backup", PASSWORD, sslmode="require")
    with pytest.raises(UnsafeClient, match=r"12 cannot refuse"):
        conn.child_environment(program=str(old))
    real = os.popen("pg_dump --version").read()
    assert str(postgres.client_major("pg_dump")) in real


def test_an_old_client_without_tls_is_refused_before_anything_starts(users, pg_policy, monkeypatch, settings):
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    monkeypatch.setattr(postgres, "client_major", lambda program: 15)
    settings.BACKUP_DB_SSLMODE = "disable"
    with FakePostgres("cleartext") as hostile:
        BackupPolicy.objects.filter(pk=pg_policy.pk).update(
            database_host="127.0.0.1", database_port=hostile.port, password_source=f"env:{PASSWORD_VARIABLE}"
        )
        run = request_backup(pg_policy, users["backup_operator"])
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert run.error.startswith("pg_dump 15 refuses to send the password other than through SCRAM only with TLS")
    assert "install the PostgreSQL 16 (or later) client programs" in run.error
    assert hostile.seen == []
