"""A worker SIGKILLed in the middle of a deploy: the reaper ends the run errored, frees the lock,
and the run's log and result say which task definition the ECS service was left on (the new one,
the kept one, or, while ECS is still rolling out, in between, said as such)."""

from __future__ import annotations

import http.server
import signal
import threading
import urllib.request

import boto3
import pytest

from deployments import jobs
from deployments.models import Deployment, Release
from deployments.services import request_deploy
from opsconsole.environments.models import Environment, Strategy
from opsconsole.runs.models import EnvironmentLock, Run, Status
from opsconsole.runs.reaper import reap
from sandbox.bootstrap import create_stack
from tests.deployments.conftest import wire
from tests.faults.conftest import start_sandbox_aws
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


# A rollout that outlasts, however loaded the machine, the worker's death and the reaper (the
# heartbeats' RUN_LOST_AFTER_SECONDS and a poll or two): the reaper must find ECS in between.
SLOW_ROLLOUT_SECONDS = 300


def fresh_stack(private, endpoint: str, monkeypatch):
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    for key, value in {**private.services.aws_env(), "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(key, value)  # the reaper, in this process, asks ECS too
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return create_stack(endpoint, environments=("staging",))


@pytest.fixture
def aws_stack(private, monkeypatch):
    return fresh_stack(private, private.services.aws_endpoint, monkeypatch)


@pytest.fixture(scope="module")
def slow_rollout_endpoint(private_services):
    server, endpoint = start_sandbox_aws(rollout_seconds=SLOW_ROLLOUT_SECONDS)
    yield endpoint
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def slow_rollout_stack(private, slow_rollout_endpoint, monkeypatch):
    return fresh_stack(private, slow_rollout_endpoint, monkeypatch)


def step_state(run: Run, name: str) -> str:
    run.refresh_from_db()
    return next((step["state"] for step in run.steps if step["name"] == name), "")


def deploy_and_kill_the_worker_during(private, operator, aws_stack, step: str, **environment_fields):
    environment, _ = Environment.objects.get_or_create(name=f"faults-{step.split()[0].lower()}")
    environment.strategy = environment_fields.pop("strategy", Strategy.ROLLING)
    wire(environment, aws_stack, "staging", **environment_fields)
    release, _ = Release.objects.get_or_create(
        repository=aws_stack.repository_uri, tag="v1.1.0", defaults={"digest": aws_stack.images["v1.1.0"]}
    )
    worker = private.worker(AWS_ENDPOINT_URL=aws_stack.endpoint)
    run = request_deploy(environment, release, operator)
    wait_for(lambda: step_state(run, step) == "running", 60, f"the deploy to reach {step!r}")
    private.kill(worker, signal.SIGKILL)  # the worker and its pool child, no goodbye

    def reaped():
        reap()
        run.refresh_from_db()
        return run.status == Status.ERRORED

    wait_for(reaped, 30, "the reaper to end the run", interval=0.5)
    return environment, run


def service_task_definition(aws_stack) -> dict:
    ecs = boto3.client("ecs", region_name="us-east-1", endpoint_url=aws_stack.endpoint)
    staging = aws_stack.environments["staging"]
    return ecs.describe_services(cluster=staging.cluster, services=[staging.service])["services"][0]


def reaper_said(run: Run) -> str:
    messages = list(run.events.order_by("seq").values_list("message", flat=True))
    assert messages[-2].startswith("Errored (worker lost"), messages[-4:]
    return messages[-1]


def test_a_worker_killed_during_the_rollout_leaves_the_run_saying_the_service_is_in_between(
    private, operator, slow_rollout_stack
):
    aws_stack = slow_rollout_stack
    environment, run = deploy_and_kill_the_worker_during(private, operator, aws_stack, jobs.ROLLOUT)

    assert run.error.startswith("worker lost")
    assert not EnvironmentLock.objects.filter(environment=environment).exists()
    record = Deployment.objects.get(run=run)
    assert record.task_definition_arn and record.previous_task_definition_arn
    service = service_task_definition(aws_stack)
    assert service["taskDefinition"] == record.task_definition_arn
    assert len(service["deployments"]) == 2  # ECS is still replacing the old tasks

    said = reaper_said(run)
    assert said.startswith("The worker was lost mid-deploy. ECS service sentinel-api-staging is IN BETWEEN")
    assert record.task_definition_arn in said and record.previous_task_definition_arn in said
    facts = run.result["worker_lost"]
    assert facts["on"] == "new" and not facts["settled"]
    assert facts["service_task_definition"] == record.task_definition_arn


def test_a_worker_killed_during_the_bake_leaves_the_run_saying_the_service_runs_the_new_revision(
    private, operator, aws_stack
):
    environment, run = deploy_and_kill_the_worker_during(private, operator, aws_stack, jobs.BAKE, bake_seconds=60)

    assert not EnvironmentLock.objects.filter(environment=environment).exists()
    record = Deployment.objects.get(run=run)
    service = service_task_definition(aws_stack)
    assert service["taskDefinition"] == record.task_definition_arn
    assert [d["rolloutState"] for d in service["deployments"]] == ["COMPLETED"]

    said = reaper_said(run)
    assert said == (
        "The worker was lost mid-deploy. ECS service sentinel-api-staging runs the new task definition "
        f"{record.task_definition_arn} (v1.1.0). The deploy's checks did not finish: verify the service, "
        "then deploy again or roll back."
    )
    assert run.result["worker_lost"]["on"] == "new" and run.result["worker_lost"]["settled"]
    environment.refresh_from_db()
    assert environment.live_release is None  # unverified: the console does not call it live


@pytest.fixture
def healthy_test_listener():
    """The idle colour's test URL, answering 200."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


def test_a_worker_killed_mid_shift_of_a_blue_green_deploy_leaves_the_run_saying_traffic_is_split(
    private, operator, aws_stack, healthy_test_listener
):
    environment, run = deploy_and_kill_the_worker_during(
        private,
        operator,
        aws_stack,
        f"{jobs.SHIFT} to 10%",
        strategy=Strategy.BLUE_GREEN,
        test_url=healthy_test_listener,
        traffic_steps=[10, 100],
        bake_seconds=60,
    )

    assert not EnvironmentLock.objects.filter(environment=environment).exists()
    record = Deployment.objects.get(run=run)
    assert reaper_said(run) == (
        "The worker was lost mid-deploy: traffic is SPLIT: blue 90%, green 10% (green has the new task definition "
        f"{record.task_definition_arn}); shift it back or forward by hand."
    )
    assert run.result["worker_lost"]["on"] == "split"
    assert run.result["worker_lost"]["weights"] == {"blue": 90, "green": 10}
