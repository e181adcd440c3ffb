"""Loaded by pytest before Django starts (`-p tests.testenv` in pyproject.toml): the settings
the test run needs, and the rule that a skip fails the run: a test skipped as it ran, and a
module or directory skipped while pytest collected it."""

import os
from urllib.parse import urlsplit, urlunsplit

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


def _one_worker_each() -> None:
    """Under pytest-xdist each worker process gets what no other may touch: its own Redis database
    (the queues, counters and locks the tests drive; the number after the given one) and its own var
    directory. pytest-django gives it its own test database (test_<name>_gw<N>)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or os.environ.get("OPSCONSOLE_TEST_WORKER") == worker:  # none, or a pytest a test started
        return
    os.environ["OPSCONSOLE_TEST_WORKER"] = worker
    number = int(worker.removeprefix("gw"))
    url = urlsplit(os.environ["REDIS_URL"])
    database = int(url.path.lstrip("/") or 0) + 1 + number
    if database > 15:
        raise pytest.UsageError(f"REDIS_URL: xdist worker {worker} needs Redis database {database}; there are 16")
    os.environ["REDIS_URL"] = urlunsplit(url._replace(path=f"/{database}"))
    os.environ["OPSCONSOLE_VAR_DIR"] = os.path.join(os.environ["OPSCONSOLE_VAR_DIR"], worker)


_one_worker_each()

# What did not run: node id -> why. A test skipped as it ran reaches pytest_runtest_logreport; a
# module skipped while collected (pytest.skip(allow_module_level=True), pytest.importorskip, a
# skip in a conftest.py) never does: its tests are never collected, so it has a hook of its own.
_skipped: dict[str, str] = {}


def _note(report, collecting: bool) -> None:
    if not report.skipped:
        return
    longrepr = report.longrepr
    where, reason = "", str(longrepr or "")
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: why")
        where, reason = str(longrepr[0]), str(longrepr[2])
    reason = reason.removeprefix("Skipped: ")
    if collecting:
        reason = f"skipped while collecting, none of its tests ran: {reason}"
    nodeid = report.nodeid
    if not nodeid or nodeid.startswith("::"):  # a file outside the rootdir: name it by its path
        nodeid = f"{where or report.fspath}{nodeid}"
    _skipped.setdefault(nodeid, reason)


def pytest_runtest_logreport(report):
    _note(report, collecting=False)


def pytest_collectreport(report):
    _note(report, collecting=True)


def pytest_sessionfinish(session, exitstatus):
    # Whatever the terminal counted as skipped counts too, collection included, should a skip
    # reach it by a path the hooks above did not see.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for report in getattr(reporter, "stats", {}).get("skipped", []):
        _note(report, collecting=isinstance(report, pytest.CollectReport))
    # NO_TESTS_COLLECTED too: a run whose only module was skipped must say why it failed.
    if _skipped and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if _skipped:
        terminalreporter.write_line(
            f"FAILED: {len(_skipped)} skipped; a skipped test or module is one that did not run:", red=True
        )
        for nodeid, reason in _skipped.items():
            terminalreporter.write_line(f"  {nodeid} ({reason})", red=True)
