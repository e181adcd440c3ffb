"""Click to running (item 2): from the API answering a launch request to the worker marking the
run running, over Celery and Redis with 2 real worker processes.

The run is the worker self-test with one line (`maintenance.selftest`): a deploy would spend its
time in AWS after it is marked running, which this figure does not include, and queue behind the
environment's lock; the path measured (API -> launch -> commit -> Redis -> a worker claims the run
with its conditional UPDATE) is the same for every run kind. The API is called in this process
through Django's test Client with an API token (POST /api/v1/runs); each run is launched once
the previous one is running, so the figure is latency, not queueing. The worker's clock and this
process's are the same machine's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Row, ms, p50_p95
from bench.data import log

WORKERS = 2


class Workers:
    """Celery worker processes started by the bench, each in its own session, stopped at the end."""

    def __init__(self, count: int):
        self.count = count
        self.processes: list[subprocess.Popen] = []
        self.log_dir = Path(tempfile.mkdtemp(prefix="bench-workers-"))

    def __enter__(self) -> Workers:
        from opsconsole.celery import app

        app.control.purge()
        for n in range(1, self.count + 1):
            logfile = open(self.log_dir / f"worker{n}.log", "wb")  # noqa: SIM115 (lives as long as the worker)
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "run_worker", "--concurrency", "1", "--name", f"bench{n}@%h"],
                    cwd=ROOT,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    stdout=logfile,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 90
        while len(app.control.ping(timeout=0.5)) < self.count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                self.stop()
                raise RuntimeError(f"the Celery workers did not start; see {self.log_dir}")
        return self

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def __exit__(self, *exc) -> None:
        self.stop()


def _token() -> str:
    from bench.data import admin_user
    from opsconsole.access.models import ApiToken

    _, raw = ApiToken.issue("bench", ["view", "run"], created_by=admin_user())
    return raw


def run(args) -> list[Row]:
    from django.test import Client

    from bench.data import ensure_history
    from opsconsole.runs.models import Run, Status

    ensure_history(0, 0)  # the admin user, environments
    client, token = Client(), _token()
    body = json.dumps({"kind": "maintenance.selftest", "params": {"lines": 1, "delay_ms": 0}})
    latencies, workers_seen = [], set()
    with Workers(WORKERS):
        for n in range(args.runs + 3):  # the first 3 warm up the workers' connections
            response = client.post(
                "/api/v1/runs", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
            )
            answered = dt.datetime.now(dt.UTC)
            if response.status_code != 201:
                raise RuntimeError(f"POST /api/v1/runs answered {response.status_code}: {response.content[:300]!r}")
            run_id = response.json()["id"]
            deadline = time.monotonic() + 30
            while True:
                started_at, worker = Run.objects.filter(pk=run_id).values_list("started_at", "worker").get()
                if started_at is not None:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"run #{run_id} was not running 30 s after it was requested")
                time.sleep(0.001)
            if n >= 3:
                latencies.append((started_at - answered).total_seconds())
                workers_seen.add(worker.split("@")[0] if "@" in worker else worker)
        # Let the last one finish before the workers stop.
        deadline = time.monotonic() + 30
        while Run.objects.filter(kind="maintenance.selftest", status__in=[Status.QUEUED, Status.RUNNING]).exists():
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    p50, p95 = p50_p95(latencies)
    log(f"click to running: p50 {ms(p50)}, p95 {ms(p95)}, max {ms(max(latencies))}, workers {len(workers_seen)}")
    return [
        Row(
            f"click to running, p50 ({len(latencies)} runs, {WORKERS} Celery workers, Redis)",
            ms(p50),
            "< 20 ms",
            p50 < 0.020,
            "API answered -> worker marked running; run kind maintenance.selftest",
        ),
        Row("click to running, p95", ms(p95), "< 100 ms", p95 < 0.100, f"max {ms(max(latencies))}"),
    ]
