"""What every benchmark module shares: the Row it returns, timing helpers, the machine line.

A benchmark module exposes `run(args) -> list[Row]`; `bench/run.py` collects the rows of every
module in one run and prints them as one table. `args` is the driver's argparse namespace
(`args.quick` asks for small sizes; `args.database_url` / `args.redis_url` say which servers).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MB = 1024 * 1024


@dataclass
class Row:
    """One line of the table: what was measured, the figure, the goal, and whether it was met.

    `met` is None where a line has no goal (a figure reported for context)."""

    name: str
    value: str
    goal: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "yes", False: "NO", None: "-"}[self.met]


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction 0.5 for p50, 0.95 for p95)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def p50_p95(seconds: list[float]) -> tuple[float, float]:
    return statistics.median(seconds), percentile(seconds, 0.95)


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine() -> str:
    mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu or 'unknown CPU'}), {mem_kb / MB:.0f} GiB, "
        f"Python {platform.python_version()}, load average {load}"
    )


def format_table(rows: list[Row]) -> str:
    lines = ["| benchmark | figure | goal | met? |", "|---|---:|---|:---:|"]
    for row in rows:
        value = f"{row.value} ({row.note})" if row.note else row.value
        lines.append(f"| {row.name} | {value} | {row.goal or '-'} | {row.verdict} |")
    return "\n".join(lines)


def parse_database_url(url: str) -> dict:
    parts = urllib.parse.urlparse(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "dbname": (parts.path or "/postgres").lstrip("/") or "postgres",
        "user": urllib.parse.unquote(parts.username or "postgres"),
        "password": urllib.parse.unquote(parts.password or ""),
    }


def database_url(params: dict, dbname: str) -> str:
    auth = urllib.parse.quote(params["user"])
    if params["password"]:
        auth += ":" + urllib.parse.quote(params["password"])
    return f"postgres://{auth}@{params['host']}:{params['port']}/{dbname}"


def bench_database_name(args) -> str:
    if args.bench_database:
        return args.bench_database
    base = parse_database_url(args.database_url)["dbname"]
    return "opsconsole_bench" if base == "postgres" else f"{base}_bench"


def maintenance(params: dict) -> dict:
    """The server's `postgres` database: the one DATABASE_URL names need not exist (CI's does not)."""
    return {**params, "dbname": "postgres"}


@dataclass
class BenchDatabase:
    """A fresh database for the console, made and dropped by the driver: the bench never writes
    into a database someone uses."""

    params: dict
    name: str

    @classmethod
    def create(cls, args) -> BenchDatabase:
        import psycopg
        from psycopg import sql

        params = parse_database_url(args.database_url)
        name = bench_database_name(args)
        with psycopg.connect(**maintenance(params), autocommit=True) as db:
            db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        database = cls(params, name)
        args.bench_url = database.url
        return database

    @property
    def url(self) -> str:
        return database_url(self.params, self.name)

    def setup_django(self, redis_url: str) -> None:
        """Point this process (and the workers it starts, through the environment) at the bench
        database and Redis, then migrate."""
        os.environ["DATABASE_URL"] = self.url
        os.environ["REDIS_URL"] = redis_url
        os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 32)
        os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
        os.environ["OPSCONSOLE_QUEUE"] = "celery"
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        os.environ["DJANGO_SETTINGS_MODULE"] = "opsconsole.settings"
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop
        import django
        from django.core.management import call_command

        django.setup()
        import logging

        for handler in logging.getLogger().handlers:  # the jobs' INFO lines are not the table
            handler.setLevel(logging.WARNING)
        call_command("migrate", verbosity=0)

    def drop(self) -> None:
        import psycopg
        from psycopg import sql

        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # Django was never set up
            pass
        with psycopg.connect(**maintenance(self.params), autocommit=True) as db:
            db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))


def server_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0].split()[0]
