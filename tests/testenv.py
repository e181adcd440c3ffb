"""Loaded by pytest before Django starts (`-p tests.testenv` in pyproject.toml): the settings
the test run needs, and the rule that a skipped test fails the run."""

import os

import pytest

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-" + "x" * 32)
os.environ.setdefault("OPSCONSOLE_QUEUE", "inline")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("SECURE_COOKIES", "false")
os.environ.setdefault("RUN_HEARTBEAT_SECONDS", "1")
os.environ.setdefault("RUN_LOST_AFTER_SECONDS", "4")
os.environ.setdefault("OPSCONSOLE_VAR_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test"))
if "DATABASE_URL" not in os.environ:
    raise pytest.UsageError("DATABASE_URL is not set: run the suite with `make test` (it starts PostgreSQL and Redis).")
if "REDIS_URL" not in os.environ:
    raise pytest.UsageError("REDIS_URL is not set: run the suite with `make test` (it starts PostgreSQL and Redis).")

_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _skipped and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _skipped:
        terminalreporter.write_line(
            f"FAILED: {len(_skipped)} test(s) skipped; a skipped test is a test that did not run:", red=True
        )
        for nodeid in _skipped:
            terminalreporter.write_line(f"  {nodeid}", red=True)
