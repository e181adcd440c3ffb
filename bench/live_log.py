"""Live log (item 5): a run writing 20,000 lines on a real Celery worker, watched in Chromium
through the console served by gunicorn. How far the page's events endpoint lags behind the
worker, the page's memory once the whole log has streamed, and opening the finished log.

Lag: a MutationObserver in the page notes when each batch of lines reaches the log; each line's
lag is that moment minus the time the worker wrote it (RunEvent.at; same machine, same clock).
It includes the poller's pause between fetches (templates/ui/_poller.html: 0.25 s after a fetch
that brought lines, 0.7 s after one that brought none; none after a full page of 2,000 lines).
Memory: JS heap used and DOM nodes from the Chrome DevTools Protocol (Performance.getMetrics)
after a garbage collection.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import urllib.request

from bench.common import ROOT, Row, ms, p50_p95
from bench.data import log

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]  # fmt: skip
OBSERVER = """
window.__arrivals = [];
document.addEventListener("DOMContentLoaded", () => {
  const log = document.getElementById("log");
  const note = (nodes) => {
    const seqs = [];
    for (const n of nodes) { if (n.dataset && n.dataset.seq) seqs.push(Number(n.dataset.seq)); }
    if (seqs.length) window.__arrivals.push([Math.min(...seqs), Math.max(...seqs), Date.now()]);
  };
  note(log.children);
  new MutationObserver(ms => { const added = []; ms.forEach(m => added.push(...m.addedNodes)); note(added); })
    .observe(log, {childList: true});
});
"""


@contextlib.contextmanager
def web_server():
    """gunicorn with the console on a free loopback port (the bench database, plain-HTTP cookies)."""
    from sandbox.process import free_port

    port = free_port()
    env = {**os.environ, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2", "SECURE_COOKIES": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "opsconsole.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _session_cookie(base_url: str) -> dict:
    from django.conf import settings
    from django.test import Client

    from bench.data import admin_user

    client = Client()
    client.force_login(admin_user())
    return {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
            "url": base_url}  # fmt: skip


def _memory(context, page) -> tuple[float, int]:
    cdp = context.new_cdp_session(page)
    cdp.send("HeapProfiler.collectGarbage")
    cdp.send("Performance.enable")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics["JSHeapUsedSize"] / 1024 / 1024, int(metrics["Nodes"])


def run(args) -> list[Row]:
    from playwright.sync_api import sync_playwright

    from bench.click_to_running import Workers
    from bench.data import admin_user, ensure_history
    from opsconsole.runs.models import Run, Status
    from opsconsole.runs.services import launch

    ensure_history(0, 0)
    lines, total = args.log_lines, args.log_lines + 2
    with Workers(1), web_server() as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=base, viewport={"width": 1400, "height": 900})
            context.add_cookies([_session_cookie(base)])
            page = context.new_page()
            page.add_init_script(OBSERVER)
            run = launch("maintenance.selftest", principal=admin_user(), params={"lines": lines, "delay_ms": 0})
            page.goto(f"/runs/{run.pk}/")
            page.locator("#poller[data-done]").wait_for(state="attached", timeout=900_000)
            arrivals = page.evaluate("window.__arrivals")
            shown = page.evaluate("document.querySelectorAll('#log li[data-seq]').length")
            heap_mb, nodes = _memory(context, page)
            page.close()

            run.refresh_from_db()
            if run.status != Status.SUCCEEDED or shown != total:
                raise RuntimeError(f"run #{run.pk} ended {run.status}; the page showed {shown} of {total} lines")
            written = dict(Run.objects.get(pk=run.pk).events.values_list("seq", "at"))
            lags = []
            for first, last, at_ms in arrivals:
                seen = dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC)
                lags.extend((seen - written[seq]).total_seconds() for seq in range(first, last + 1) if seq in written)
            p50, p95 = p50_p95(lags)
            writing = (run.finished_at - run.started_at).total_seconds()

            # Opening the finished log in a fresh page: the tail, at once.
            page = context.new_page()
            started = time.perf_counter()
            page.goto(f"/runs/{run.pk}/")
            opened_in = time.perf_counter() - started
            page.locator("#poller[data-done]").wait_for(state="attached", timeout=60_000)
            settled_in = time.perf_counter() - started
            open_heap_mb, open_nodes = _memory(context, page)
        finally:
            browser.close()
    log(f"live log: lag p50 {ms(p50)} p95 {ms(p95)} max {ms(max(lags))}; heap {heap_mb:.1f} MB, {nodes} nodes")
    return [
        Row(
            f"live log: events endpoint lag behind the worker ({lines:,} lines)",
            f"p50 {ms(p50)}, p95 {ms(p95)}, max {ms(max(lags))}",
            "< 1 s (p95)",
            p95 < 1.0,
            f"worker wrote {lines / writing:,.0f} lines/s; page polls 0.25 s after a fetch that brought lines",
        ),
        Row(
            "live log: browser page memory after the whole log streamed",
            f"JS heap {heap_mb:.1f} MB, {nodes:,} DOM nodes",
            note=f"{total:,} lines on the page",
        ),
        Row(
            "live log: opening the finished log (tail first)",
            f"{opened_in:.2f} s to load, {settled_in:.2f} s until polling stops",
            "was 10-60 s",
            opened_in < 5,
            f"JS heap {open_heap_mb:.1f} MB, {open_nodes:,} DOM nodes",
        ),
    ]
