"""Runs that outlive their assumed-role credentials, against a sandbox whose credentials last 2 s.

AWS's assumed-role credentials last an hour at most by default, and a worker may pick up a run
when the ones it holds have minutes left. The sandbox here shortens every credential to
CREDENTIAL_SECONDS (sandbox.strict.sts) and refuses requests signed with expired ones, as AWS
does, so a run that holds on to one set of credentials dies with ExpiredToken(Exception).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request

import pytest
from botocore.client import BaseClient

from deployments.services import request_deploy
from opsconsole import aws
from opsconsole.runs.models import Status
from sandbox.bootstrap import clients, create_stack
from tests.deployments.conftest import free_port, wire

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CREDENTIAL_SECONDS = 2
ROLE_ARN = "arn:aws:iam::123456789012:role/opsconsole-deployer"
EXTERNAL_ID = "opsconsole-sandbox-external-id"


@contextlib.contextmanager
def sandbox_server(env: dict[str, str]):
    """A sandbox AWS server of its own, with these SANDBOX_* settings."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sandbox.server", "--port", str(port)],
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # moto imports slowly on a loaded machine
    try:
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                assert server.poll() is None, "the sandbox AWS server exited at start"
                assert time.monotonic() < deadline, "the sandbox AWS server did not start within 60s"
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def short_lived_credentials_endpoint():
    env = {
        "SANDBOX_STS_CREDENTIAL_SECONDS": str(CREDENTIAL_SECONDS),
        # Rollouts (a rollback's too) last longer than one credential.
        "SANDBOX_ROLLOUT_SECONDS": "2.5",
        "SANDBOX_FAIL_SECONDS": "0.5",
    }
    with sandbox_server(env) as endpoint:
        yield endpoint


@pytest.fixture
def stack(short_lived_credentials_endpoint, monkeypatch, settings):
    """This module's own stack, on the short-lived-credentials sandbox (replaces conftest's)."""
    endpoint = short_lived_credentials_endpoint
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sandbox")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.DEPLOY_POLL_MS = 200
    settings.AWS_ROLE_EXTERNAL_ID = EXTERNAL_ID
    aws.forget_credentials()  # none held from another test's sandbox
    return create_stack(endpoint)


@pytest.fixture
def staging_with_role(staging, stack):
    return wire(staging, stack, "staging", role_arn=ROLE_ARN)


@pytest.fixture
def assume_role_calls(monkeypatch):
    """The parameters of every AssumeRole the console sends (what CloudTrail would record)."""
    calls: list[dict] = []
    make_api_call = BaseClient._make_api_call

    def recording(client, operation_name, api_params):
        if operation_name == "AssumeRole":
            calls.append(dict(api_params))
        return make_api_call(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return calls


def service_task_definition(stack, environment) -> str:
    ecs = clients(stack.endpoint)("ecs")
    return ecs.describe_services(cluster=environment.ecs_cluster, services=[environment.ecs_service])["services"][0][
        "taskDefinition"
    ]


def test_a_deploy_that_outlives_three_credentials_succeeds(
    users, staging_with_role, releases, stack, assume_role_calls
):
    wire(staging_with_role, stack, "staging", role_arn=ROLE_ARN, bake_seconds=4)
    release = releases["v1.1.0"]

    run = request_deploy(staging_with_role, release, users["deployer"])

    run.refresh_from_db()
    messages = list(run.events.values_list("message", flat=True))
    assert run.status == Status.SUCCEEDED, (run.error, messages)
    assert (run.finished_at - run.started_at).total_seconds() > 3 * CREDENTIAL_SECONDS
    assert service_task_definition(stack, staging_with_role).endswith(":2")
    # The run assumed the role under its own name, with the external ID, again as each set expired.
    assert len(assume_role_calls) > 3
    assert {(call["RoleArn"], call["RoleSessionName"], call["ExternalId"]) for call in assume_role_calls} == {
        (ROLE_ARN, f"opsconsole-run-{run.pk}", EXTERNAL_ID)
    }


def test_the_rollback_of_a_broken_release_outlives_its_credentials_too(users, staging_with_role, releases, stack):
    before = service_task_definition(stack, staging_with_role)

    run = request_deploy(staging_with_role, releases["v1.3.0-broken"], users["deployer"])

    run.refresh_from_db()
    messages = list(run.events.values_list("message", flat=True))
    assert run.status == Status.ROLLED_BACK, (run.error, messages)
    assert "circuit breaker" in run.error
    assert (run.finished_at - run.started_at).total_seconds() > CREDENTIAL_SECONDS
    assert service_task_definition(stack, staging_with_role) == before
    assert not any("ExpiredToken" in message for message in messages)
