"""Backups (item 6): the console's pg_dump path (pg_dump -Fc streamed into an S3 multipart upload)
against plain `pg_dump -Fc > /dev/null` on the same database, at a small and a >= 1 GB size.

For each size: (re)create the database `<bench database>_dump` on the server of DATABASE_URL with
one table of wide, half-compressible text rows; dump
it with `pg_dump -Fc > /dev/null` and through backups.postgres.dump_to_s3 in a child process
that streams to the sandbox's moto S3 server (started here on a free loopback port), alternating,
`--rounds` times each (the best time of each counts). The child reports its own peak RSS (VmHWM:
the uploading process, not pg_dump). The database is dropped at the end. Prints one table; the
goals are a ratio >= 0.9 and a peak under 100 MB that stays flat as the database grows.

`run(args)` returns the rows for bench/run.py; this file is also the child process that uploads
(`--upload`), so its peak RSS is the upload's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from psycopg import sql  # noqa: E402

from backups import postgres  # noqa: E402
from bench.common import Row, bench_database_name  # noqa: E402
from sandbox.process import free_port, start_aws  # noqa: E402

DATABASE = "opsconsole_bench_dump"  # replaced by run(): <bench database>_dump
BUCKET = "opsconsole-bench"
REGION = "us-east-1"
ROW_BYTES = 300  # 8 md5 hex strings per row plus the tuple's overhead, roughly
MB = 1024 * 1024


def connection_from_url(url: str, dbname: str | None = None) -> postgres.Connection:
    """The database of `url`, or `dbname` on its server."""
    parts = urllib.parse.urlparse(url)
    return postgres.Connection(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        dbname=dbname or (parts.path or "/postgres").lstrip("/") or "postgres",
        user=urllib.parse.unquote(parts.username or "postgres"),
        password=urllib.parse.unquote(parts.password or ""),
    )


def s3_client(endpoint: str):
    return boto3.client(
        "s3", region_name=REGION, endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench"
    )


def start_sandbox() -> tuple[subprocess.Popen, str]:
    return start_aws(free_port(), quiet=True)


def create_database(admin: postgres.Connection, target_bytes: int) -> int:
    """opsconsole_bench with one table of about target_bytes; returns pg_database_size."""
    postgres.drop_database(admin, DATABASE)
    with admin.connect(dbname=admin.dbname, autocommit=True) as db:
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    body = " || ".join(f"md5((g * {k})::text)" for k in range(1, 9))
    with admin.connect(dbname=DATABASE, autocommit=True) as db:
        db.execute(
            sql.SQL(
                "CREATE TABLE events AS SELECT g AS id, now() - g * interval '1 second' AS created_at, "
                + body
                + " AS body FROM generate_series(1, %s) g"
            ),
            [target_bytes // ROW_BYTES],
        )
        db.execute("ALTER TABLE events ADD PRIMARY KEY (id)")
        db.execute("VACUUM ANALYZE events")
        return db.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def plain_pg_dump(conn: postgres.Connection) -> float:
    started = time.monotonic()
    with open(os.devnull, "wb") as sink:
        subprocess.run(
            ["pg_dump", "--format=custom", "--no-password"],
            stdout=sink,
            env=conn.child_environment(DATABASE),
            check=True,
        )
    return time.monotonic() - started


def console_dump(conn: postgres.Connection, endpoint: str, key: str) -> dict:
    """The upload in a child process, so its peak RSS is the upload's alone."""
    child = subprocess.run(
        [sys.executable, __file__, "--upload", "--endpoint", endpoint, "--key", key],
        env={**os.environ, "DATABASE_URL": url_of(conn)},
        capture_output=True,
        text=True,
    )
    if child.returncode:
        raise SystemExit(f"the upload failed:\n{child.stderr}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def url_of(conn: postgres.Connection) -> str:
    auth = urllib.parse.quote(conn.user) + (f":{urllib.parse.quote(conn.password)}" if conn.password else "")
    return f"postgres://{auth}@{conn.host}:{conn.port}/{DATABASE}"


def upload_child(endpoint: str, key: str) -> None:
    conn = connection_from_url(os.environ["DATABASE_URL"])
    s3 = s3_client(endpoint)
    started = time.monotonic()
    uploaded = postgres.dump_to_s3(conn, s3, BUCKET, key)
    elapsed = time.monotonic() - started
    hwm_kb = next(
        int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:")
    )
    print(json.dumps({"seconds": elapsed, "size": uploaded.size, "parts": uploaded.parts, "peak_rss_kb": hwm_kb}))


def run(args) -> list[Row]:
    global DATABASE
    DATABASE = bench_database_name(args) + "_dump"
    admin = connection_from_url(args.database_url, "postgres")  # the one the URL names need not exist
    conn = postgres.Connection(admin.host, admin.port, DATABASE, admin.user, admin.password)
    sandbox, endpoint = start_sandbox()
    measured = []
    try:
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket=BUCKET)
        for size_mb in [int(s) for s in str(args.backup_sizes_mb).split(",")]:
            print(f"  generating about {size_mb} MB...", file=sys.stderr, flush=True)
            db_bytes = create_database(admin, size_mb * MB)
            # Alternating rounds, best of each: the other work on a shared machine only ever
            # slows a run down, so the fastest run of each is the fairest comparison.
            baselines, consoles = [], []
            for round_ in range(args.backup_rounds):
                baselines.append(plain_pg_dump(conn))
                key = f"bench/{size_mb}-{round_}.dump"
                consoles.append(console_dump(conn, endpoint, key))
                s3.delete_object(Bucket=BUCKET, Key=key)  # moto keeps objects in memory
            console = {
                **min(consoles, key=lambda c: c["seconds"]),
                "peak_rss_kb": max(c["peak_rss_kb"] for c in consoles),
            }
            if console["size"] < size_mb * MB / 10:  # the table compresses about 2:1: this dumped something else
                raise SystemExit(f"the console's dump is {console['size']:,} bytes, of a {size_mb} MB table")
            measured.append((db_bytes, min(baselines), console))
    finally:
        postgres.drop_database(admin, DATABASE)
        sandbox.terminate()
        sandbox.wait(timeout=10)

    rows = []
    peaks = [console["peak_rss_kb"] / 1024 for _, _, console in measured]
    for db_bytes, baseline, console in measured:
        size = f"{db_bytes / MB:,.0f} MB database"
        plain_rate = db_bytes / MB / baseline
        console_rate = db_bytes / MB / console["seconds"]
        ratio = console_rate / plain_rate
        rows.append(
            Row(
                f"backups: pg_dump -> S3 throughput vs plain pg_dump -Fc, {size}",
                f"{ratio:.2f}x ({console_rate:.1f} vs {plain_rate:.1f} MB/s)",
                ">= 0.9x",
                ratio >= 0.9,
                f"best of {args.backup_rounds}; dump {console['size'] / MB:,.0f} MB in {console['parts']} parts",
            )
        )
        peak = console["peak_rss_kb"] / 1024
        rows.append(Row(f"backups: upload peak RSS, {size}", f"{peak:.0f} MB", "< 100 MB", peak < 100))
    if len(peaks) > 1:
        growth = max(peaks) - min(peaks)
        rows.append(Row("backups: peak RSS growth across sizes", f"{growth:.0f} MB", "< 10 MB (flat)", growth < 10))
    return rows


def main() -> None:
    """Only the upload child: the benchmark itself runs from bench/run.py."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upload", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.upload:
        raise SystemExit("run the benchmarks with bench/run.py (make bench); this file is its upload child")
    upload_child(args.endpoint, args.key)


if __name__ == "__main__":
    main()
