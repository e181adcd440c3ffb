"""Browser-test harness: Debian's Chromium driven by Playwright (sync API) against pytest-django's
live server, a stand-in worker thread for runs the browser watches, sign-in through the real
form, and a screenshot in test-artifacts/ when a test fails."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import Browser, Page, expect, sync_playwright

from opsconsole.runs import dispatch, runner
from opsconsole.runs.context import JOB_LOGGER
from opsconsole.runs.models import ACTIVE, Run
from tests.conftest import PASSWORD
from tests.deployments.conftest import releases, sandbox_endpoint, stack  # noqa: F401 (the sandbox AWS fixtures)

# Playwright's sync API keeps an asyncio event loop running in the test thread (it switches to it
# with greenlets while it waits for the browser); it would refuse to start inside a loop of ours,
# and Django, seeing that loop, takes every ORM call of a test, a fixture or the flush after a
# test for async code and raises SynchronousOnlyOperation. Nothing here is async: the loop never
# touches the database and each thread has its own connection, so the guard protects nothing.
# Set at import because Django reads the flag at every call; it stays set for the rest of the run.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = "test-artifacts"
_reports = pytest.StashKey[dict]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # Keep each phase's report on the item, so the page fixture knows whether the test failed.
    report = yield
    item.stash.setdefault(_reports, {})[report.when] = report
    return report


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the e2e package. Package scope, not session: stopping Playwright
    ends its event loop, so the tests collected after this package run without it."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, live_server, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (no cookies) on the live server; screenshot on failure."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
    finally:
        reports = request.node.stash.get(_reports, {})
        if any(report.failed for report in reports.values()):
            directory = Path(request.config.rootpath) / ARTIFACTS
            directory.mkdir(exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
            try:
                path = directory / f"{name}.png"
                page.screenshot(path=str(path), full_page=True)
                print(f"screenshot: {path}")
            except Exception as exc:  # the screenshot must not hide the test's own failure
                print(f"could not save a screenshot: {exc}")
        context.close()


@pytest.fixture
def js_errors(page: Page) -> list[str]:
    """Uncaught exceptions and console errors of the page (a CSP violation is logged as one)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    return errors


def sign_in(page: Page, user, password: str = PASSWORD) -> None:
    """Sign in through the login form, as a person would."""
    page.goto("/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(user.get_username(), exact=True)).to_be_visible()


@pytest.fixture
def runs_in_background(transactional_db, settings, monkeypatch) -> Iterator[list[threading.Thread]]:
    """Execute launched runs in a thread, as a worker would, instead of inside the request.

    The test settings queue runs `inline`: the request that starts a run would only answer once
    the run had ended, and the browser could never watch the log grow. With the queue set to
    `celery`, launch() checks the broker (the test Redis) and dispatches on commit; the patched
    dispatch() starts runner.execute(run_id) in a thread rather than sending a message.
    At teardown, runs still going are asked to cancel and the threads are joined, so the
    database flush after the test does not race a writer.
    """
    settings.OPSCONSOLE_QUEUE = "celery"
    # Job log lines still become RunEvents (the handler sits on the job logger itself); they just
    # stop echoing to the root handlers: pytest's capture would hold all 20,000 of a long run's
    # lines, print them in a failure report and slow the writer down.
    monkeypatch.setattr(logging.getLogger(JOB_LOGGER), "propagate", False)
    threads: list[threading.Thread] = []
    failures: list[BaseException] = []

    def execute(run_id: int) -> None:
        try:
            runner.execute(run_id)
        except BaseException as exc:
            failures.append(exc)
            raise
        finally:
            connection.close()  # this thread's own connection

    def start_in_thread(run_id: int) -> None:
        thread = threading.Thread(target=execute, args=(run_id,), name=f"e2e-run-{run_id}", daemon=True)
        threads.append(thread)
        thread.start()

    monkeypatch.setattr(dispatch, "dispatch", start_in_thread)
    yield threads
    Run.objects.filter(status__in=ACTIVE).update(cancel_requested=True)
    for thread in threads:
        thread.join(timeout=60)
    assert not [thread.name for thread in threads if thread.is_alive()], "a run thread did not stop"
    assert not failures, f"a run thread crashed: {failures!r}"
