"""pg_dump into S3 and S3 into pg_restore, with the real PostgreSQL client programs.

No Django here. Connection details (password included) reach the child processes only through
their environment (PGHOST, PGUSER, PGPASSWORD...): never argv, which any local user can read in
/proc or `ps`, and never a log line.

A password is only ever answered to SCRAM-SHA-256, which never shows it to the server: a server
(or anyone in between) that asks for it in clear text or as MD5 gets nothing. libpq 16 and later
say so with `require_auth`; older client programs only with `channel_binding=require` (SCRAM with
TLS channel binding), and libpq before 16 silently ignores a PGREQUIREAUTH it does not know, so
the client program's version decides which (password_guard).
"""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from backups.s3stream import DEFAULT_PART_SIZE, StreamAborted, Uploaded, download_into, object_sha256, upload_stream

NO_PASSFILE = "/nonexistent/opsconsole-has-no-pgpass"  # os.devnull makes libpq warn
DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# libpq's connection keywords and the environment variables that set them for a child program.
LIBPQ_ENVIRONMENT = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "require_auth": "PGREQUIREAUTH",
    "channel_binding": "PGCHANNELBINDING",
}
# No password to send: refuse every method that asks for one, so that libpq's own fallbacks (the
# worker's PGPASSWORD, a ~/.pgpass) are never sent to the policy's server either.
NO_PASSWORD_METHODS = "!password,!md5,!scram-sha-256"


class UnsafeClient(Exception):
    """The client program cannot be made to refuse a request for the password in clear text or
    as MD5 (or cannot be run at all): nothing was started or sent. The message says what to do."""


def password_guard(libpq_major: int, sslmode: str, *, password: bool, client: str = "pg_dump") -> dict[str, str]:
    """The libpq options under which a client of `libpq_major` answers only SCRAM-SHA-256 with
    the password (`password`), or no password request at all (no password)."""
    if libpq_major >= 16:
        return {"require_auth": "scram-sha-256" if password else NO_PASSWORD_METHODS}
    if not password:
        return {}  # nothing to send: the child gets no password, no PGPASSWORD and no ~/.pgpass
    if libpq_major < 13:
        raise UnsafeClient(
            f"{client} {libpq_major} cannot refuse to send the database password in clear text; "
            "install the PostgreSQL 16 (or later) client programs on the worker. Nothing was sent."
        )
    if sslmode == "disable":
        raise UnsafeClient(
            f"{client} {libpq_major} refuses to send the password other than through SCRAM only with TLS "
            "channel binding, which BACKUP_DB_SSLMODE=disable rules out; use sslmode require or verify-full, "
            "or install the PostgreSQL 16 (or later) client programs on the worker. Nothing was sent."
        )
    return {"channel_binding": "require"}


@functools.cache
def client_major(program: str) -> int:
    """The major version of a PostgreSQL client program (`pg_dump --version`): Debian and the
    PostgreSQL packages link it against a libpq at least that new."""
    try:
        output = subprocess.run(
            [program, "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
        ).stdout
    except OSError as exc:
        raise UnsafeClient(f"{program} cannot be run ({exc.strerror}); nothing was sent.") from None
    found = re.search(r"\(PostgreSQL\)\s+(\d+)", output)
    if not found:
        raise UnsafeClient(f"{program} --version did not say its PostgreSQL version; nothing was sent.")
    return int(found.group(1))


class ChecksumMismatch(Exception):
    """The object in S3 is not the one the backup recorded: never restore it."""


class RestoreFailed(Exception):
    """pg_restore (or preparing its target) did not succeed; the message says why."""


@dataclass(frozen=True)
class Connection:
    host: str
    port: int
    dbname: str
    user: str
    password: str = field(default="", repr=False)
    sslmode: str = "prefer"
    sslrootcert: str = ""  # empty: libpq's default, ~/.postgresql/root.crt

    def libpq_options(self, libpq_major: int, client: str) -> dict[str, str]:
        """TLS and authentication options for a client of `libpq_major` (see password_guard)."""
        options = {"sslmode": self.sslmode}
        if self.sslrootcert:
            options["sslrootcert"] = self.sslrootcert
        options.update(password_guard(libpq_major, self.sslmode, password=bool(self.password), client=client))
        return options

    def child_environment(self, dbname: str | None = None, *, program: str = "pg_dump") -> dict[str, str]:
        """A minimal environment for pg_dump / pg_restore: PATH and libpq's variables only, so no
        other secret of the worker's environment is handed to the child. Raises
        UnsafeClient when `program` could send the password other than through SCRAM."""
        options = self.libpq_options(client_major(program), program)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C.UTF-8",
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": dbname or self.dbname,
            "PGAPPNAME": "opsconsole-backups",
            "PGCONNECT_TIMEOUT": "15",
            # No ~/.pgpass lookup: the password comes from the console or not at all.
            "PGPASSFILE": NO_PASSFILE,
        }
        env.update({LIBPQ_ENVIRONMENT[name]: value for name, value in options.items()})
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def connect(self, dbname: str | None = None, **kwargs) -> psycopg.Connection:
        """A psycopg connection (its own libpq, 16 or later in psycopg[binary]) under the same rules."""
        options = self.libpq_options(psycopg.pq.version() // 10000, "psycopg's libpq")
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            passfile=NO_PASSFILE,
            dbname=dbname or self.dbname,
            application_name="opsconsole-backups",
            connect_timeout=15,
            **options,
            **kwargs,
        )


def check_database_name(name: str) -> str:
    if not DATABASE_NAME.match(name or ""):
        raise ValueError(
            "A database name is 1 to 63 letters, digits, underscores or dashes, not starting with a digit."
        )
    return name


class _Tail(threading.Thread):
    """Drains a pipe (so the child never blocks on a full stderr) keeping its last lines."""

    def __init__(self, pipe, lines: int = 30):
        super().__init__(daemon=True)
        self.pipe, self.lines = pipe, deque(maxlen=lines)
        self.start()

    def run(self) -> None:
        for raw in iter(self.pipe.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace").rstrip())
        self.pipe.close()

    def text(self) -> str:
        self.join(timeout=5)
        return "\n".join(self.lines)


def describe_exit(program: str, returncode: int, stderr: str) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        what = f"{program} was killed by {name}"
    else:
        what = f"{program} exited with status {returncode}"
    return f"{what}: {stderr.strip()}" if stderr.strip() else what


def dump_to_s3(
    conn: Connection,
    s3,
    bucket: str,
    key: str,
    *,
    part_size: int = DEFAULT_PART_SIZE,
    kms_key_id: str = "",
    check_cancel: Callable[[], None] = lambda: None,
    on_start: Callable[[subprocess.Popen], None] = lambda process: None,
    program: str = "pg_dump",
    tags: dict[str, str] | None = None,
) -> Uploaded:
    """`pg_dump -Fc` of the database, its stdout streamed into s3://bucket/key.

    If pg_dump fails or is killed, the multipart upload is aborted: no object remains, and
    StreamAborted says why (with pg_dump's last stderr lines). UnsafeClient: nothing was
    started.
    """
    env = conn.child_environment(program=program)
    process = subprocess.Popen(
        [program, "--format=custom", "--no-password"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # a Ctrl-C to the worker is the worker's business, not pg_dump's
    )
    stderr = _Tail(process.stderr)
    on_start(process)

    def producer_ok() -> str | None:
        returncode = process.wait()
        return describe_exit("pg_dump", returncode, stderr.text()) if returncode else None

    try:
        return upload_stream(
            process.stdout,
            s3,
            bucket,
            key,
            part_size=part_size,
            kms_key_id=kms_key_id,
            producer_ok=producer_ok,
            check_cancel=check_cancel,
            tags=tags,
        )
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()


def verify_checksum(s3, bucket: str, key: str, expected_sha256: str) -> str:
    """Read the object and compare its SHA-256 with the recorded one; returns its ETag."""
    actual, size, etag = object_sha256(s3, bucket, key)
    if actual != expected_sha256:
        raise ChecksumMismatch(
            f"s3://{bucket}/{key} does not match its backup record (SHA-256 {actual[:16]}… of {size} bytes, "
            f"expected {expected_sha256[:16]}…); it was not restored."
        )
    return etag


def create_database(conn: Connection, name: str) -> None:
    """Create an empty database to restore into; refuses one that already exists."""
    check_database_name(name)
    with conn.connect(dbname="postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            raise RestoreFailed(f"Database {name} already exists; restores go into a new database.")
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(conn: Connection, name: str) -> None:
    check_database_name(name)
    with conn.connect(dbname="postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def restore_from_s3(
    conn: Connection,
    target_database: str,
    s3,
    bucket: str,
    key: str,
    expected_sha256: str,
    *,
    check_cancel: Callable[[], None] = lambda: None,
    program: str = "pg_restore",
) -> None:
    """Check the object's checksum, then stream it into `pg_restore` against target_database
    (which must exist and be empty). The checksum is checked before anything is restored, and
    again on the bytes that pg_restore actually read."""
    check_database_name(target_database)
    env = conn.child_environment(target_database, program=program)  # UnsafeClient before any download
    etag = verify_checksum(s3, bucket, key, expected_sha256)
    process = subprocess.Popen(
        # pg_restore needs -d to restore into a database rather than print SQL; an empty value
        # leaves the choice to PGDATABASE, so no connection detail is on the command line.
        [program, "--no-owner", "--no-privileges", "--exit-on-error", "--no-password", "--dbname="],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    stderr = _Tail(process.stderr)
    streamed = ""
    try:
        streamed = download_into(s3, bucket, key, process.stdin, if_match=etag, check_cancel=check_cancel)
        process.stdin.close()
    except BrokenPipeError:
        pass  # pg_restore stopped reading: its exit status and stderr say why
    except BaseException:
        process.kill()
        raise
    finally:
        if not process.stdin.closed:
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass
    returncode = process.wait()
    if returncode:
        raise RestoreFailed(describe_exit("pg_restore", returncode, stderr.text()))
    if streamed != expected_sha256:
        raise ChecksumMismatch(f"s3://{bucket}/{key} changed while it was being restored.")


def table_row_counts(conn: Connection, database: str, limit: int = 200) -> dict[str, int]:
    """Rows per user table (exact counts), for proving a restore holds data."""
    counts: dict[str, int] = {}
    with conn.connect(dbname=database) as db:
        tables = db.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') "
            "ORDER BY 1, 2 LIMIT %s",
            [limit],
        ).fetchall()
        for schema, table in tables:
            query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            counts[f"{schema}.{table}"] = db.execute(query).fetchone()[0]
    return counts


__all__ = [
    "ChecksumMismatch",
    "Connection",
    "RestoreFailed",
    "StreamAborted",
    "UnsafeClient",
    "create_database",
    "drop_database",
    "dump_to_s3",
    "restore_from_s3",
    "table_row_counts",
    "verify_checksum",
]
