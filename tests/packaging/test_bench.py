"""`make bench` cannot rot: the driver runs every benchmark module at tiny sizes against the real
PostgreSQL, Redis and Chromium and prints one table with every expected line. The figures at these
sizes mean nothing and are not checked; that each benchmark ran to the end and reported is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_ROWS = [
    "delivery: page at",
    "delivery: queries per page as the history grows",
    "history: data",
    "history: environment history page (production)",
    "history: audit page, first page",
    "history: audit page, filtered by actor",
    "history: audit page, filtered by action prefix",
    "history: audit page, filtered by an action nothing matches",
    "history: audit page, deep in (keyset, half way)",
    "history: runs page",
    "history: audit page vs Django admin changelist (same table)",
    "click to running, p50",
    "click to running, p95",
    "audit: appends/s, 4 concurrent writers, one chain",
    "audit: the same with synchronous_commit=off",
    "audit: verify the whole chain",
    "audit: verifier peak RSS",
    "orchestration: rolling deploy, console vs bare boto3 (moto server)",
    "orchestration: AWS calls per deploy, console vs script",
    "live log: events endpoint lag behind the worker",
    "live log: browser page memory after the whole log streamed",
    "live log: opening the finished log (tail first)",
    "backups: pg_dump -> S3 throughput vs plain pg_dump -Fc",
    "backups: upload peak RSS",
]
TINY = ["--deployments", "300", "--audit-events", "3000", "--requests", "5", "--runs", "5", "--appends", "40",
        "--log-lines", "50", "--backup-sizes-mb", "2", "--backup-rounds", "1"]  # fmt: skip


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_the_bench_driver_prints_every_benchmark_line():
    database_url = os.environ.get("DATABASE_URL", "postgres://root@127.0.0.1:5432/opsconsole")
    name = (urlparse(database_url).path.lstrip("/") or "opsconsole") + "_benchsmoke"
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", *TINY, "--database-url", database_url, "--bench-database", name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert table[0] == "| benchmark | figure | goal | met? |"
    names = [line.split(" | ")[0].removeprefix("| ") for line in table[1:]]
    for expected in EXPECTED_ROWS:
        assert any(n.startswith(expected) for n in names), f"no line for {expected!r} in:\n{result.stdout}"
    assert not [n for n in names if "did not complete" in n]
    assert "Machine: " in result.stdout
