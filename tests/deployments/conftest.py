"""The sandbox AWS (moto server over HTTP with rolling ECS deployments) and environments wired to it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from deployments.models import Release
from opsconsole.environments.models import Environment, Strategy, Tier
from sandbox.bootstrap import create_stack
from tests.conftest import stop_server

POLL_MS = "20"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def sandbox_endpoint():
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sandbox.server", "--port", str(port)],
        env={"SANDBOX_ROLLOUT_SECONDS": "0.6", "SANDBOX_FAIL_SECONDS": "0.4", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # moto imports slowly on a loaded machine
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            break
        except OSError:
            assert server.poll() is None, "the sandbox AWS server exited at start"
            assert time.monotonic() < deadline, "the sandbox AWS server did not start within 60s"
            time.sleep(0.2)
    yield endpoint
    stop_server(server)


@pytest.fixture
def stack(sandbox_endpoint, monkeypatch, settings):
    """A fresh demo stack for each test (moto's state is reset first)."""
    urllib.request.urlopen(urllib.request.Request(f"{sandbox_endpoint}/moto-api/reset", method="POST"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sandbox")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.DEPLOY_POLL_MS = int(POLL_MS)
    return create_stack(sandbox_endpoint)


def wire(environment: Environment, stack, name: str, **overrides) -> Environment:
    s = stack.environments[name]
    fields = dict(
        ecs_cluster=s.cluster,
        ecs_service=s.service,
        task_family=s.family,
        container_name=s.container,
        alarm_names=s.alarm_names,
        bake_seconds=0,
        rollout_timeout_seconds=20,
        migration_timeout_seconds=20,
        migration_command=["python", "manage.py", "migrate"],
        green_service=s.green_service,
        listener_arn=s.listener_arn,
        test_listener_arn=s.test_listener_arn,
        blue_target_group_arn=s.blue_target_group_arn,
        green_target_group_arn=s.green_target_group_arn,
        traffic_steps=[10, 100],
    )
    fields.update(overrides)
    for key, value in fields.items():
        setattr(environment, key, value)
    environment.save()
    return environment


@pytest.fixture
def staging_aws(staging, stack):
    return wire(staging, stack, "staging")


@pytest.fixture
def production_aws(production, stack):
    return wire(production, stack, "production", required_approvals=1)


@pytest.fixture
def releases(stack, users):
    """One release per ECR tag in the stack, keyed by tag."""
    return {
        tag: Release.objects.create(
            repository=stack.repository_uri, tag=tag, digest=digest, registered_by_name="ci", git_sha="abc123"
        )
        for tag, digest in stack.images.items()
    }


__all__ = ["wire", "Strategy", "Tier"]
