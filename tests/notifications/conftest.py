"""A real HTTP receiver on a loopback port standing in for Slack and PagerDuty, channels wired
to it through environment variables (the way secrets reach the worker), and short retry waits."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from notifications.delivery import wait_for_inline_deliveries
from notifications.models import Channel

# The deploy tests run real deploys against the sandbox AWS.
from tests.deployments.conftest import production_aws, releases, sandbox_endpoint, stack, staging_aws  # noqa: F401

# The queue tests start real Celery and RQ workers.
from tests.integration.conftest import clean_queues, processes  # noqa: F401

SLACK_VAR = "TEST_SLACK_WEBHOOK_URL"
PAGERDUTY_VAR = "TEST_PAGERDUTY_ROUTING_KEY"
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefabcdef"
BASE_URL = "https://console.example.com"


@dataclass
class Captured:
    path: str
    headers: dict
    body: dict
    at: float  # time.monotonic() when it arrived


@dataclass
class Receiver:
    """Records every POST; answers from a per-path script of (status, headers), then 200/202."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Captured] = field(default_factory=list)
    scripts: dict[str, list[tuple[int, dict]]] = field(default_factory=dict)
    holds: dict[str, threading.Event] = field(default_factory=dict)
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def script(self, path: str, *responses: tuple[int, dict]) -> None:
        self.scripts[path] = list(responses)

    def hold(self, path: str) -> threading.Event:
        """Requests to `path` wait (a slow channel) until the returned event is set."""
        self.holds[path] = threading.Event()
        return self.holds[path]

    def to(self, path: str) -> list[Captured]:
        return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 30) -> list[Captured]:
        deadline = time.monotonic() + timeout
        while len(self.to(path)) < count:
            assert time.monotonic() < deadline, f"{path} received {len(self.to(path))} of {count} requests"
            time.sleep(0.02)
        return self.to(path)

    def handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                with receiver.lock:
                    receiver.requests.append(Captured(self.path, dict(self.headers), body, time.monotonic()))
                    receiver.in_flight += 1
                    script = receiver.scripts.get(self.path)
                    status, headers = script.pop(0) if script else (202 if "pagerduty" in self.path else 200, {})
                try:
                    hold = receiver.holds.get(self.path)
                    if hold is not None:
                        hold.wait(timeout=60)
                    answer = b'{"status": "success"}' if status < 300 else b'{"status": "error"}'
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the client gave up (its timeout) before we answered
                finally:
                    with receiver.lock:
                        receiver.in_flight -= 1

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def receiver():
    rec = Receiver()
    server = ThreadingHTTPServer((rec.host, 0), rec.handler())
    server.daemon_threads = True
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    for event in rec.holds.values():
        event.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def notify_settings(settings, receiver, monkeypatch):
    """Secrets in the worker's environment, PagerDuty's URL pointed at the receiver, short waits."""
    monkeypatch.setenv(SLACK_VAR, receiver.url("/slack/T000/B000/XXXXSECRETXXXX"))
    monkeypatch.setenv(PAGERDUTY_VAR, ROUTING_KEY)
    settings.PAGERDUTY_EVENTS_URL = receiver.url("/pagerduty/v2/enqueue")
    settings.OPSCONSOLE_BASE_URL = BASE_URL
    settings.NOTIFY_BACKOFF_SECONDS = 0.05
    settings.NOTIFY_MAX_ATTEMPTS = 3
    settings.NOTIFY_TIMEOUT_SECONDS = 5
    return settings


SLACK_PATH = "/slack/T000/B000/XXXXSECRETXXXX"
PAGERDUTY_PATH = "/pagerduty/v2/enqueue"


@pytest.fixture(autouse=True)
def deliveries_finish():
    """Every test waits for the inline backend's deliveries before the database is torn down."""
    yield
    assert wait_for_inline_deliveries(90), "deliveries were still being sent 90s after the test"


def slack_channel(environment, events, **extra) -> Channel:
    return Channel.objects.create(
        environment=environment, name="#ops", kind="slack", events=list(events), secret=f"env:{SLACK_VAR}", **extra
    )


def pagerduty_channel(environment, events, **extra) -> Channel:
    return Channel.objects.create(
        environment=environment,
        name="on-call",
        kind="pagerduty",
        events=list(events),
        secret=f"env:{PAGERDUTY_VAR}",
        **extra,
    )


def email_channel(environment, events, recipients="ops@example.com, lead@example.com") -> Channel:
    return Channel.objects.create(
        environment=environment, name="ops mail", kind="email", events=list(events), recipients=recipients
    )
