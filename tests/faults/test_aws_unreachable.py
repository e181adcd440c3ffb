"""AWS throttling or unreachable, over HTTP: the client factory's retries (adaptive mode, 8
retries, exponential backoff) absorb a burst of throttling; an endpoint that keeps throttling or
cannot be reached ends the deploy with a clear failure and the service untouched.

(tests/deployments/test_aws_failures.py covers the deploy's own retries of a throttled poll with
botocore's Stubber; this goes through the real client, its retry handler and a socket.)
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.retries.bucket import Clock, TokenBucket
from botocore.retries.standard import ExponentialBackoff

from deployments.services import request_deploy
from opsconsole.runs.models import EnvironmentLock, Status
from tests.deployments.conftest import free_port

pytestmark = pytest.mark.django_db(transaction=True)

ECS_TARGET = "AmazonEC2ContainerServiceV20141113."


class ThrottlingProxy:
    """Forwards AWS requests to the sandbox, except that it answers 400 ThrottlingException to
    the operations in `throttle` (name -> how many times; -1: always). Counts what it saw."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.throttle: dict[str, int] = {}
        self.seen: list[tuple[str, int]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                operation = self.headers.get("X-Amz-Target", "").removeprefix(ECS_TARGET) or self.path
                left = proxy.throttle.get(operation, 0)
                if left:
                    proxy.throttle[operation] = left - 1 if left > 0 else left
                    proxy.seen.append((operation, 400))
                    return self.answer(
                        400,
                        json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode(),
                        {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": "ThrottlingException"},
                    )
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(proxy.upstream + self.path, data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, data, reply_headers = response.status, response.read(), response.headers
                except urllib.error.HTTPError as error:
                    status, data, reply_headers = error.code, error.read(), error.headers
                proxy.seen.append((operation, status))
                self.answer(status, data, {"Content-Type": reply_headers.get("Content-Type", "application/json")})

            def answer(self, status: int, data: bytes, headers: dict):
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


SPEEDUP = 100


@pytest.fixture
def backoffs(monkeypatch):
    """botocore's waits run SPEEDUP times faster: the backoff before each retry (recorded at its
    full value, jitter at its maximum) and the adaptive rate limiter's token bucket, whose clock
    runs SPEEDUP times faster while it waits SPEEDUP times less (so it admits the same rate)."""
    waited: list[float] = []
    original = ExponentialBackoff.delay_amount

    def delay_amount(self, context):
        self._random = lambda: 1.0
        full = original(self, context)
        waited.append(full)
        return full / SPEEDUP

    started = time.time()
    original_sleep_amount = TokenBucket._sleep_amount
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", delay_amount)
    monkeypatch.setattr(Clock, "current_time", lambda self: started + (time.time() - started) * SPEEDUP)
    monkeypatch.setattr(Clock, "sleep", lambda self, amount: time.sleep(amount / SPEEDUP))
    monkeypatch.setattr(
        TokenBucket, "_sleep_amount", lambda self, amount: original_sleep_amount(self, amount) / SPEEDUP
    )
    return waited


@pytest.fixture
def proxy(stack, monkeypatch):
    proxy = ThrottlingProxy(stack.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    yield proxy
    proxy.close()


def service_task_definition(stack) -> str:
    ecs = boto3.client("ecs", region_name="us-east-1", endpoint_url=stack.endpoint)
    staging = stack.environments["staging"]
    return ecs.describe_services(cluster=staging.cluster, services=[staging.service])["services"][0]["taskDefinition"]


def messages(run) -> list[str]:
    return list(run.events.order_by("seq").values_list("message", flat=True))


def test_a_burst_of_throttling_is_retried_with_backoff_and_the_deploy_succeeds(
    proxy, backoffs, staging_aws, releases, users
):
    proxy.throttle = {"DescribeServices": 3, "RegisterTaskDefinition": 2}
    run = request_deploy(staging_aws, releases["v1.1.0"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, (run.error, messages(run)[-5:])
    assert proxy.seen[:4] == [("DescribeServices", 400)] * 3 + [("DescribeServices", 200)]
    assert proxy.seen.count(("RegisterTaskDefinition", 400)) == 2
    assert backoffs[:3] == [1, 2, 4]  # seconds, doubling: 1 s base for throttling


def test_an_endpoint_that_keeps_throttling_fails_the_deploy_clearly_with_the_service_untouched(
    proxy, backoffs, staging_aws, releases, users, stack
):
    before = service_task_definition(stack)
    proxy.throttle = {"DescribeServices": -1}
    run = request_deploy(staging_aws, releases["v1.1.0"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.FAILED, (run.status, run.error)
    assert "ThrottlingException" in run.error and "Nothing was changed on the service" in run.error, run.error
    # Each call: 9 attempts by botocore (max_attempts=8 counts the retries); the deploy's poller
    # tries such a call 8 times, logging each retry.
    assert proxy.seen == [("DescribeServices", 400)] * 72
    assert backoffs[:8] == [1, 2, 4, 8, 16, 20, 20, 20]
    assert sum("AWS answered ThrottlingException to describe_services" in m for m in messages(run)) == 7
    assert service_task_definition(stack) == before
    assert not EnvironmentLock.objects.filter(environment=staging_aws).exists()


def test_an_unreachable_endpoint_fails_the_deploy_clearly_after_retries(
    backoffs, staging_aws, releases, users, stack, monkeypatch
):
    port = free_port()  # nothing listens there: connection refused
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    run = request_deploy(staging_aws, releases["v1.1.0"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.FAILED, (run.status, run.error)
    assert f'Could not connect to the endpoint URL: "http://127.0.0.1:{port}/"' in run.error, run.error
    assert "Nothing was changed on the service" in run.error
    assert backoffs == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4]  # 9 attempts; 50 ms base for non-throttling
    assert not EnvironmentLock.objects.filter(environment=staging_aws).exists()
