"""The `make run` entry point: the embedded sandbox starts on a free port with no services, a demo
deployer deploys over HTTP (one release succeeds, a `-broken` one is rolled back), and Ctrl-C
(SIGINT) leaves no process behind."""

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
            except (OSError, IndexError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Browser:
    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=10) as response:
            return response.read().decode()

    def csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def post(self, path: str, data: dict) -> str:
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": self.csrf()}).encode()
        request = urllib.request.Request(self.base + path, body, headers={"Referer": self.base + path})
        with self.opener.open(request, timeout=30) as response:
            return response.geturl()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_make_run_starts_deploys_rolls_back_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "OPSCONSOLE_QUEUE", "ALLOWED_HOSTS")
    }
    env.update(
        OPSCONSOLE_SANDBOX="1",
        OPSCONSOLE_VAR_DIR=str(tmp_path),
        OPSCONSOLE_DEMO_PASSWORD="demo-pass-123",
        SANDBOX_ROLLOUT_SECONDS="1",
        SANDBOX_FAIL_SECONDS="1",
        DEPLOY_POLL_MS="250",
        PYTHONUNBUFFERED="1",
    )
    log = open(tmp_path / "console.log", "wb")  # noqa: SIM115
    console = subprocess.Popen(
        [sys.executable, "manage.py", "runconsole", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    children: set[int] = set()
    try:

        def ready():
            try:
                return json.loads(urllib.request.urlopen(base + "/readyz", timeout=2).read())["status"] == "ok"
            except OSError:
                assert console.poll() is None, (tmp_path / "console.log").read_text()
                return False

        wait_for(ready, 120, "/readyz")
        printed = (tmp_path / "console.log").read_text()
        assert f"Ops Console running at {base}/" in printed
        assert "password demo-pass-123" in printed

        browser = Browser(base)
        browser.get("/login/")
        assert browser.post("/login/", {"username": "dana", "password": "demo-pass-123"}).endswith("/environments/")
        page = browser.get("/environments/staging/")
        release_ids = dict((tag, int(pk)) for pk, tag in re.findall(r'<option value="(\d+)">([\w.-]+) ·', page))

        def deploy(tag: str) -> dict:
            run_url = browser.post("/environments/staging/deploy/", {"release": release_ids[tag]})
            run_id = int(re.search(r"/runs/(\d+)/$", run_url).group(1))

            def ended():
                run = json.loads(browser.get(f"/api/v1/runs/{run_id}"))
                return run if run["terminal"] else None

            return wait_for(ended, 120, f"the deploy of {tag} to end")

        assert deploy("v1.1.0")["status"] == "succeeded"
        broken = deploy("v1.3.0-broken")
        assert broken["status"] == "rolled_back"
        assert "circuit breaker" in broken["error"]
        children = descendants(console.pid)
        assert len(children) >= 4  # web, worker (and its pool), scheduler, sandbox AWS
    finally:
        console.send_signal(signal.SIGINT)
        try:
            console.wait(timeout=40)
        finally:
            if console.poll() is None:
                console.kill()
    left = [pid for pid in children if alive(pid)]
    assert left == [], f"processes left running after Ctrl-C: {left}"
    assert "Stopped." in (tmp_path / "console.log").read_text()
