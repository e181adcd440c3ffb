"""Real worker processes (Celery, RQ) and schedulers against the test database and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(ROOT / "manage.py")]


def test_database_url() -> str:
    """The URL of the database pytest-django created, for processes started by a test."""
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Processes:
    """Starts processes in their own session and kills whatever is left at the end."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str], queue: str, **extra_env: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "OPSCONSOLE_QUEUE": queue,
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        process.log_path = self.log_dir / f"{name}.log"
        self.started.append(process)
        return process

    def celery_worker(self, name: str = "w1", **extra_env: str) -> subprocess.Popen:
        from opsconsole.celery import app

        process = self.start(
            name, MANAGE + ["run_worker", "--concurrency", "1", "--name", f"{name}@%h"], "celery", **extra_env
        )
        wait_for(lambda: app.control.ping(timeout=0.5) or process.poll() is not None, 60, "the Celery worker")
        assert process.poll() is None, process.log_path.read_text()
        return process

    def kill_group(self, process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            self.kill_group(process)


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def clean_queues():
    """Empty the Celery and RQ queues so a test sees only its own messages."""
    import django_rq

    from opsconsole.celery import app

    app.control.purge()
    django_rq.get_queue("default").empty()
    yield
    app.control.purge()
    django_rq.get_queue("default").empty()
