"""Backups against the real parts: a moto S3/RDS/ElastiCache server and the test PostgreSQL,
with a small source database (a few tables and rows) created for each test and dropped after.
The test PostgreSQL trusts everyone; `password_protected` puts it behind a front that checks a
real password with SCRAM over TLS (tests/backups/fakepg.py)."""

from __future__ import annotations

import contextlib
import uuid

import boto3
import psycopg
import pytest
from django.db import connection

from backups.models import BackupPolicy, Kind
from sandbox.bootstrap import BACKUP_BUCKETS, DR_REGION, REGION
from tests.backups.fakepg import FakePostgres
from tests.deployments.conftest import sandbox_endpoint, stack  # noqa: F401  (the moto server fixtures)

PASSWORD_VARIABLE = "BACKUP_DB_PASSWORD_TEST"  # within the default BACKUP_PASSWORD_ENV_PREFIX


def server() -> dict:
    s = connection.settings_dict
    return {"host": s["HOST"] or "127.0.0.1", "port": int(s["PORT"] or 5432), "user": s["USER"] or "root"}


def admin_connection():
    return psycopg.connect(dbname="postgres", autocommit=True, **server())


def drop(name: str) -> None:
    with admin_connection() as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_exists(name: str) -> bool:
    with admin_connection() as db:
        return db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


@pytest.fixture
def source_db():
    """A small application database: customers and orders with rows, and an empty audit table."""
    name = f"h6_bk_src_{uuid.uuid4().hex[:8]}"
    with admin_connection() as db:
        db.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(dbname=name, autocommit=True, **server()) as db:
        db.execute("CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL)")
        db.execute("CREATE TABLE orders (id serial PRIMARY KEY, customer int REFERENCES customers, total numeric)")
        db.execute("CREATE TABLE audit_trail (id serial PRIMARY KEY, note text)")
        db.execute("INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 50) g")
        db.execute("INSERT INTO orders (customer, total) SELECT 1 + g % 50, g * 1.5 FROM generate_series(1, 500) g")
    yield name
    drop(name)


@pytest.fixture
def scratch_names():
    """Database names a test restores into; dropped afterwards whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        drop(name)


@pytest.fixture(autouse=True)
def fast_polls(settings):
    settings.BACKUP_POLL_SECONDS = 0.02


def s3(region: str = REGION):
    return boto3.client("s3", region_name=region)


@pytest.fixture
def pg_policy(staging, stack, source_db):  # noqa: F811
    db = server()
    return BackupPolicy.objects.create(
        environment=staging,
        kind=Kind.PG_DUMP,
        name="nightly dump",
        schedule="0 3 * * *",
        database_host=db["host"],
        database_port=db["port"],
        database_name=source_db,
        database_user=db["user"],
        bucket=BACKUP_BUCKETS[REGION],
        prefix="database/",
        copy_to_dr=True,
        dr_region=DR_REGION,
        dr_bucket=BACKUP_BUCKETS[DR_REGION],
        retention_days=7,
        min_copies=2,
    )


@pytest.fixture
def rds_policy(staging, stack):  # noqa: F811
    return BackupPolicy.objects.create(
        environment=staging,
        kind=Kind.RDS_SNAPSHOT,
        name="nightly snapshot",
        source_identifier=stack.environments["staging"].db_instance,
        copy_to_dr=True,
        dr_region=DR_REGION,
    )


@pytest.fixture
def redis_policy(staging, stack):  # noqa: F811
    return BackupPolicy.objects.create(
        environment=staging,
        kind=Kind.REDIS_SNAPSHOT,
        name="hourly redis",
        source_identifier=stack.environments["staging"].redis_cluster,
        bucket=BACKUP_BUCKETS[REGION],
        prefix="redis/",
        copy_to_dr=True,
        dr_region=DR_REGION,
        dr_bucket=BACKUP_BUCKETS[DR_REGION],
    )


@pytest.fixture
def password_protected(settings, monkeypatch):
    """protect(policy, password): the policy reaches the test PostgreSQL through a front that
    asks for `password` with SCRAM-SHA-256 over TLS, reads it from PASSWORD_VARIABLE and connects
    with sslmode=require. Returns the front (what it saw)."""
    with contextlib.ExitStack() as fronts:

        def protect(policy: BackupPolicy, password: str) -> FakePostgres:
            db = server()
            front = fronts.enter_context(
                FakePostgres("scram", password=password, tls=True, upstream=(db["host"], db["port"]))
            )
            monkeypatch.setenv(PASSWORD_VARIABLE, password)
            settings.BACKUP_DB_SSLMODE = "require"
            policy.database_host, policy.database_port = "127.0.0.1", front.port
            policy.password_source = f"env:{PASSWORD_VARIABLE}"
            policy.save()
            return front

        yield protect
