"""Rolling deploys against stubbed AWS: the failure sequences moto cannot produce.

Each test runs the real deploy job end to end (request_deploy with the inline queue) while the
AWS client factory hands out botocore clients wrapped in a Stubber that expects the exact calls,
in order, with the responses the AWS API reference documents.
"""

from __future__ import annotations

import functools
import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.stub import ANY

from deployments import ecs, jobs
from deployments.models import Deployment, Release
from deployments.services import request_deploy
from opsconsole.runs.models import EnvironmentLock, Run, Status
from opsconsole.runs.services import Refused, cancel
from tests.deployments import stubs
from tests.deployments.stubs import (
    CLUSTER,
    CONTAINER,
    FAMILY,
    MIGRATION_TASK,
    NETWORK,
    NEW_TASK_DEFINITION,
    OLD_TASK_DEFINITION,
    SERVICE,
    StubbedAws,
    deployment,
    event,
)

pytestmark = pytest.mark.django_db(transaction=True)

OLD_DEPLOYMENT = "ecs-svc/1000000000000000001"  # running the old task definition before the deploy
NEW_DEPLOYMENT = "ecs-svc/2000000000000000002"  # ours, created by update_service
ECS_ROLLBACK = "ecs-svc/3000000000000000003"  # the circuit breaker's own rollback
OUR_ROLLBACK = "ecs-svc/4000000000000000004"  # created by our update_service back to the old revision
CIRCUIT_BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."
MIGRATE = ["python", "manage.py", "migrate"]
ALARM = "staging-api-5XX"
LATENCY_ALARM = "staging-api-latency-p99"

DESCRIBE_SERVICE = {"cluster": CLUSTER, "services": [SERVICE]}

STEPS = [jobs.READ, jobs.REGISTER, jobs.MIGRATE, jobs.UPDATE, jobs.ROLLOUT, jobs.BAKE]


# --- Fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch, settings):
    """Stubbed ECS and CloudWatch clients handed to the deploy job; polls every 10 ms."""
    settings.DEPLOY_POLL_MS = 10
    stubbed = StubbedAws()
    monkeypatch.setattr(jobs.aws, "client", stubbed.client)
    stubbed.activate()
    yield stubbed
    stubbed.deactivate()


@pytest.fixture
def environment(staging):
    """Staging wired to the stubbed service; no migration, no smoke checks, no bake unless a test says so."""
    return configure(staging)


@pytest.fixture
def release(db):
    return Release.objects.create(
        repository=f"{stubs.ACCOUNT}.dkr.ecr.{stubs.REGION}.amazonaws.com/api",
        tag="v1.4.0",
        digest="sha256:" + "ab12" * 16,
        registered_by_name="ci",
        git_sha="4f2a9c1",
    )


@pytest.fixture
def failing_health_endpoint():
    """A local HTTP server whose health check answers 500; yields its URL and the paths it served."""
    served: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            served.append(self.path)
            body = b"database unavailable"
            self.send_response(500)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/healthz", served
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def configure(environment, **overrides):
    fields = dict(
        ecs_cluster=CLUSTER,
        ecs_service=SERVICE,
        container_name=CONTAINER,
        task_family=FAMILY,
        migration_command=[],
        smoke_checks=[],
        alarm_names=[ALARM],
        bake_seconds=0,
        rollout_timeout_seconds=60,
        migration_timeout_seconds=60,
    )
    fields.update(overrides)
    for key, value in fields.items():
        setattr(environment, key, value)
    environment.save()
    return environment


# --- Expected calls ----------------------------------------------------------------------------------


def expect_read_and_register(aws: StubbedAws, release: Release, alarms=(ALARM,)) -> None:
    aws.ecs.add_response("describe_services", stubs.steady(OLD_TASK_DEFINITION, OLD_DEPLOYMENT), DESCRIBE_SERVICE)
    expect_alarms(aws, *[stubs.alarm(name) for name in alarms])  # the preflight: every alarm exists
    aws.ecs.add_response(
        "describe_task_definition",
        stubs.describe_task_definition(),
        {"taskDefinition": OLD_TASK_DEFINITION, "include": ["TAGS"]},
    )
    aws.ecs.add_response(
        "register_task_definition",
        stubs.register_task_definition(release.image),
        {**stubs.registrable(release.image), "tags": stubs.TAGS},
    )


def expect_update(aws: StubbedAws, task_definition: str, deployment_id: str, previous: list[dict]) -> None:
    aws.ecs.add_response(
        "update_service",
        stubs.update_service(task_definition, deployment_id, previous),
        {
            "cluster": CLUSTER,
            "service": SERVICE,
            "taskDefinition": task_definition,
        },
    )


def expect_deploy_update(aws: StubbedAws) -> None:
    old = deployment(OLD_DEPLOYMENT, OLD_TASK_DEFINITION, status="ACTIVE", rollout_state="COMPLETED", running=2)
    expect_update(aws, NEW_TASK_DEFINITION, NEW_DEPLOYMENT, [old])


def expect_service(aws: StubbedAws, task_definition: str, deployments: list[dict], events=None) -> None:
    aws.ecs.add_response(
        "describe_services", stubs.describe_services(task_definition, deployments, events), DESCRIBE_SERVICE
    )


def ours(rollout_state: str, *, status: str = "PRIMARY", reason: str = "", running: int = 1) -> dict:
    return deployment(
        NEW_DEPLOYMENT, NEW_TASK_DEFINITION, status=status, rollout_state=rollout_state, reason=reason, running=running
    )


def expect_alarms(aws: StubbedAws, *alarms: dict) -> None:
    names = [a["AlarmName"] for a in alarms]
    aws.cloudwatch.add_response(
        "describe_alarms",
        stubs.describe_alarms(*alarms),
        {"AlarmNames": names, "AlarmTypes": ["MetricAlarm", "CompositeAlarm"], "MaxRecords": 100},
    )


def expect_circuit_breaker_rolled_back(aws: StubbedAws, *, events=None) -> None:
    """Our rollout FAILED and ECS's own rollback deployment (old revision, PRIMARY) is under way."""
    expect_service(
        aws,
        OLD_TASK_DEFINITION,
        [
            deployment(ECS_ROLLBACK, OLD_TASK_DEFINITION, running=1),
            ours("FAILED", status="ACTIVE", reason=CIRCUIT_BREAKER_REASON, running=0),
        ],
        events,
    )


def expect_our_rollback_completes(aws: StubbedAws) -> None:
    """Roll back with update_service to the old revision, then it completes."""
    expect_update(aws, OLD_TASK_DEFINITION, OUR_ROLLBACK, [ours("COMPLETED", status="ACTIVE", running=2)])
    expect_service(
        aws,
        OLD_TASK_DEFINITION,
        [deployment(OUR_ROLLBACK, OLD_TASK_DEFINITION, rollout_state="COMPLETED", running=2, reason="done")],
    )


# --- Reading the outcome -----------------------------------------------------------------------------


def messages(run) -> list[str]:
    return list(run.events.order_by("seq").values_list("message", flat=True))


def steps(run) -> list[tuple[str, str]]:
    return [(step["name"], step["state"]) for step in run.steps]


def deploy(environment, release, users):
    run = request_deploy(environment, release, users["deployer"])
    run.refresh_from_db()
    return run


def assert_rolled_back_and_locked(run, environment, reason: str) -> None:
    assert run.status == Status.ROLLED_BACK, (run.error, messages(run))
    assert run.error == reason
    assert run.result == {"rolled_back_to": OLD_TASK_DEFINITION, "reason": reason}
    events = messages(run)
    assert f"Rolling back to {OLD_TASK_DEFINITION}: {reason}" in events
    assert f"Rolled back to {OLD_TASK_DEFINITION}. staging is locked until someone unlocks it." in events
    assert events[-1] == "Rolled back."
    lock = EnvironmentLock.objects.get(environment=environment)
    assert lock.run is None
    assert lock.held_by == "opsconsole"
    assert lock.reason == f"Rolled back by run #{run.pk}: {reason}"[:200]
    environment.refresh_from_db()
    assert environment.live_release is None


# --- Tests -------------------------------------------------------------------------------------------


def test_a_deploy_registers_the_same_definition_with_only_the_image_changed_and_succeeds(
    aws, users, environment, release
):
    configure(environment, migration_command=MIGRATE, alarm_names=[ALARM, LATENCY_ALARM])
    expect_read_and_register(aws, release, alarms=(ALARM, LATENCY_ALARM))
    aws.ecs.add_response(
        "run_task",
        stubs.run_task(),
        {
            "cluster": CLUSTER,
            "taskDefinition": NEW_TASK_DEFINITION,
            "count": 1,
            "startedBy": "opsconsole-migrate",
            "overrides": {"containerOverrides": [{"name": CONTAINER, "command": MIGRATE}]},
            "networkConfiguration": NETWORK,
            "launchType": "FARGATE",
            "clientToken": ANY,
        },
    )
    describe_task = {"cluster": CLUSTER, "tasks": [MIGRATION_TASK]}
    aws.ecs.add_response("describe_tasks", stubs.describe_tasks("RUNNING"), describe_task)
    aws.ecs.add_response(
        "describe_tasks", stubs.describe_tasks("STOPPED", 0, "Essential container in task exited"), describe_task
    )
    expect_deploy_update(aws)
    expect_service(aws, NEW_TASK_DEFINITION, [ours("IN_PROGRESS")])
    expect_service(aws, NEW_TASK_DEFINITION, [ours("COMPLETED", running=2, reason="done")])
    expect_alarms(aws, stubs.alarm(ALARM), stubs.alarm(LATENCY_ALARM))

    run = deploy(environment, release, users)

    assert run.status == Status.SUCCEEDED, (run.error, messages(run))
    aws.assert_no_pending_responses()
    assert run.error == ""
    assert run.result == {"task_definition": NEW_TASK_DEFINITION, "release": "v1.4.0"}
    assert steps(run) == [(name, "done") for name in STEPS]

    (registered,) = aws.params("register_task_definition")
    sent_back = set(stubs.READ_ONLY) & set(registered)
    assert not sent_back, f"read-only fields sent to register_task_definition: {sent_back}"
    described = stubs.describe_task_definition()["taskDefinition"]
    app, sidecar = registered["containerDefinitions"]
    assert app == {**described["containerDefinitions"][0], "image": release.image}
    assert sidecar == described["containerDefinitions"][1]
    unchanged = {k: v for k, v in described.items() if k not in stubs.READ_ONLY and k != "containerDefinitions"}
    assert {k: v for k, v in registered.items() if k not in ("containerDefinitions", "tags")} == unchanged
    assert registered["tags"] == stubs.TAGS

    events = messages(run)
    assert "Migration task 0f5c3e8a9d1b4c7e8f2a6b3d9e1c4a7b started: python manage.py migrate" in events
    assert "Migrations finished with exit code 0." in events
    assert f"Registered {NEW_TASK_DEFINITION}." in events
    assert f"Service updated (deployment {NEW_DEPLOYMENT})." in events
    assert "The service's deployment circuit breaker is on, with rollback." in events
    assert "Rollout in_progress: 1 of 2 tasks running." in events
    assert "Rollout completed." in events
    assert "Baked for 0s with no alarm." in events
    assert events[-1] == "Succeeded."

    record = Deployment.objects.get(run=run)
    assert record.previous_task_definition_arn == OLD_TASK_DEFINITION
    assert record.task_definition_arn == NEW_TASK_DEFINITION
    environment.refresh_from_db()
    assert environment.live_release == release
    assert not EnvironmentLock.objects.filter(environment=environment).exists()


def test_a_rollout_the_circuit_breaker_fails_ends_rolled_back_with_its_reason_and_locks(
    aws, users, environment, release
):
    expect_read_and_register(aws, release)
    expect_deploy_update(aws)
    expect_circuit_breaker_rolled_back(aws)
    # The roll back: ECS already put the old revision back as PRIMARY, so UpdateService to it starts
    # no deployment and answers with ECS's own; that one is followed, and it completes.
    failed = ours("FAILED", status="ACTIVE", reason=CIRCUIT_BREAKER_REASON, running=0)
    expect_update(aws, OLD_TASK_DEFINITION, ECS_ROLLBACK, [failed])
    done = deployment(ECS_ROLLBACK, OLD_TASK_DEFINITION, rollout_state="COMPLETED", running=2, reason="done")
    expect_service(aws, OLD_TASK_DEFINITION, [done])

    run = deploy(environment, release, users)

    assert_rolled_back_and_locked(run, environment, f"Rollout failed: {CIRCUIT_BREAKER_REASON}")
    aws.assert_no_pending_responses()
    assert [p["taskDefinition"] for p in aws.params("update_service")] == [NEW_TASK_DEFINITION, OLD_TASK_DEFINITION]
    assert steps(run) == [
        (jobs.READ, "done"),
        (jobs.REGISTER, "done"),
        (jobs.MIGRATE, "skipped"),
        (jobs.UPDATE, "done"),
        (jobs.ROLLOUT, "failed"),
        (jobs.BAKE, "pending"),
        ("Roll back", "done"),
    ]
    with pytest.raises(Refused, match="is locked by opsconsole"):
        request_deploy(environment, release, users["deployer"])


def test_a_rollout_that_outlasts_its_timeout_is_rolled_back_to_the_old_task_definition(
    aws, users, environment, release, monkeypatch
):
    configure(environment, rollout_timeout_seconds=1)
    # A clock that moves one second per reading: the second poll of the rollout is past its deadline.
    ticks = itertools.count()
    monkeypatch.setattr(jobs, "Poller", functools.partial(ecs.Poller, clock=lambda: next(ticks)))
    expect_read_and_register(aws, release)
    expect_deploy_update(aws)
    expect_service(aws, NEW_TASK_DEFINITION, [ours("IN_PROGRESS")])
    expect_service(aws, NEW_TASK_DEFINITION, [ours("IN_PROGRESS")])
    # The roll back: we point the service back ourselves.
    expect_update(aws, OLD_TASK_DEFINITION, OUR_ROLLBACK, [ours("IN_PROGRESS", status="ACTIVE")])
    expect_service(
        aws,
        OLD_TASK_DEFINITION,
        [deployment(OUR_ROLLBACK, OLD_TASK_DEFINITION, rollout_state="COMPLETED", running=2, reason="done")],
    )

    run = deploy(environment, release, users)

    assert_rolled_back_and_locked(run, environment, "Rollout failed: the rollout did not complete within 1s")
    aws.assert_no_pending_responses()
    assert "did not complete within" in run.error
    assert [p["taskDefinition"] for p in aws.params("update_service")] == [NEW_TASK_DEFINITION, OLD_TASK_DEFINITION]
    assert messages(run).count("Rollout in_progress: 1 of 2 tasks running.") == 1
    assert steps(run)[4:] == [(jobs.ROLLOUT, "failed"), (jobs.BAKE, "pending"), ("Roll back", "done")]


def test_a_migration_that_exits_1_fails_the_run_without_touching_the_service(aws, users, environment, release):
    configure(environment, migration_command=MIGRATE)
    expect_read_and_register(aws, release)
    aws.ecs.add_response("run_task", stubs.run_task())
    aws.ecs.add_response(
        "describe_tasks",
        stubs.describe_tasks("STOPPED", 1, "Essential container in task exited"),
        {"cluster": CLUSTER, "tasks": [MIGRATION_TASK]},
    )

    run = deploy(environment, release, users)

    assert run.status == Status.FAILED, (run.error, messages(run))
    aws.assert_no_pending_responses()
    assert "exited with code 1" in run.error
    assert "Essential container in task exited" in run.error
    assert "the service was not touched" in run.error
    assert "update_service" not in aws.operations()
    assert aws.operations() == [
        "describe_services",
        "describe_alarms",
        "describe_task_definition",
        "register_task_definition",
        "run_task",
        "describe_tasks",
    ]
    assert steps(run) == [
        (jobs.READ, "done"),
        (jobs.REGISTER, "done"),
        (jobs.MIGRATE, "failed"),
        (jobs.UPDATE, "pending"),
        (jobs.ROLLOUT, "pending"),
        (jobs.BAKE, "pending"),
    ]
    events = messages(run)
    assert not any(m.startswith("Rolling back") for m in events)
    assert events[-1] == run.error
    assert not EnvironmentLock.objects.filter(environment=environment).exists()
    environment.refresh_from_db()
    assert environment.live_release is None


def test_an_alarm_going_off_during_the_bake_rolls_back_and_names_the_alarm(aws, users, environment, release):
    configure(environment, alarm_names=[ALARM, LATENCY_ALARM], bake_seconds=60)
    expect_read_and_register(aws, release, alarms=(ALARM, LATENCY_ALARM))
    expect_deploy_update(aws)
    expect_service(aws, NEW_TASK_DEFINITION, [ours("COMPLETED", running=2, reason="done")])
    expect_alarms(aws, stubs.alarm(ALARM), stubs.alarm(LATENCY_ALARM))
    threshold = "Threshold Crossed: 1 datapoint [12.0 (03/06/25 14:05:00)] was greater than the threshold (5.0)."
    expect_alarms(aws, stubs.alarm(ALARM, "ALARM", threshold), stubs.alarm(LATENCY_ALARM))
    expect_our_rollback_completes(aws)

    run = deploy(environment, release, users)

    reason = f"Alarm in ALARM during bake: {ALARM} ({threshold})"
    assert_rolled_back_and_locked(run, environment, reason)
    aws.assert_no_pending_responses()
    assert ALARM in run.error and LATENCY_ALARM not in run.error
    assert [p["taskDefinition"] for p in aws.params("update_service")] == [NEW_TASK_DEFINITION, OLD_TASK_DEFINITION]
    assert steps(run)[3:] == [
        (jobs.UPDATE, "done"),
        (jobs.ROLLOUT, "done"),
        (jobs.BAKE, "failed"),
        ("Roll back", "done"),
    ]


def test_a_smoke_test_answering_500_rolls_back(aws, users, environment, release, failing_health_endpoint):
    url, served = failing_health_endpoint
    configure(environment, smoke_checks=[{"url": url, "expected_status": 200}])
    expect_read_and_register(aws, release)
    expect_deploy_update(aws)
    expect_service(aws, NEW_TASK_DEFINITION, [ours("COMPLETED", running=2, reason="done")])
    expect_our_rollback_completes(aws)

    run = deploy(environment, release, users)

    assert_rolled_back_and_locked(run, environment, f"Smoke test failed: {url}: status 500, expected 200")
    aws.assert_no_pending_responses()
    assert "smoke test failed" in run.error.lower()
    assert served == ["/healthz"]
    # The preflight read the alarms; the bake's smoke test failed before it read them again.
    assert aws.operations().count("describe_alarms") == 1
    assert steps(run)[5:] == [(jobs.BAKE, "failed"), ("Roll back", "done")]


def test_throttling_while_waiting_for_the_rollout_is_retried_and_the_deploy_succeeds(aws, users, environment, release):
    expect_read_and_register(aws, release)
    expect_deploy_update(aws)
    expect_service(aws, NEW_TASK_DEFINITION, [ours("IN_PROGRESS")])
    for _ in range(2):
        aws.ecs.add_client_error(
            "describe_services",
            service_error_code="ThrottlingException",
            service_message="Rate exceeded",
            http_status_code=400,
            expected_params=DESCRIBE_SERVICE,
        )
    expect_service(aws, NEW_TASK_DEFINITION, [ours("COMPLETED", running=2, reason="done")])
    expect_alarms(aws, stubs.alarm(ALARM))

    run = deploy(environment, release, users)

    assert run.status == Status.SUCCEEDED, (run.error, messages(run))
    aws.assert_no_pending_responses()
    retries = [m for m in messages(run) if m.startswith("AWS answered ThrottlingException to describe_services")]
    assert len(retries) == 2
    assert retries[0].endswith("(attempt 1).") and retries[1].endswith("(attempt 2).")
    assert aws.operations().count("describe_services") == 5
    assert steps(run) == [(name, "skipped" if name == jobs.MIGRATE else "done") for name in STEPS]
    environment.refresh_from_db()
    assert environment.live_release == release
    assert not EnvironmentLock.objects.filter(environment=environment).exists()


def test_a_task_ecs_cannot_place_is_logged_and_the_failed_rollout_rolled_back(aws, users, environment, release):
    unable = (
        f"(service {SERVICE}) was unable to place a task because no container instance met all of its "
        "requirements. The closest matching (container-instance 5b1f8e2c9d7a4e3b) has insufficient memory "
        "available. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
    )
    steady_state = event("e-0", f"(service {SERVICE}) has reached a steady state.")
    placement = event("e-1", unable)
    rolling_back = event("e-2", f"(service {SERVICE}) rolling back to deployment {ECS_ROLLBACK}.")
    expect_read_and_register(aws, release)
    expect_deploy_update(aws)
    expect_service(aws, NEW_TASK_DEFINITION, [ours("IN_PROGRESS", running=0)], [steady_state])
    expect_service(aws, NEW_TASK_DEFINITION, [ours("IN_PROGRESS", running=0)], [placement, steady_state])
    expect_circuit_breaker_rolled_back(aws, events=[rolling_back, placement, steady_state])
    expect_update(aws, OLD_TASK_DEFINITION, ECS_ROLLBACK, [])
    done = deployment(ECS_ROLLBACK, OLD_TASK_DEFINITION, rollout_state="COMPLETED", running=2, reason="done")
    expect_service(aws, OLD_TASK_DEFINITION, [done])

    run = deploy(environment, release, users)

    assert_rolled_back_and_locked(run, environment, f"Rollout failed: {CIRCUIT_BREAKER_REASON}")
    aws.assert_no_pending_responses()
    events = messages(run)
    assert events.count(f"ECS: {unable}") == 1
    assert f"ECS: {rolling_back['message']}" in events
    assert f"ECS: {steady_state['message']}" not in events  # older than the deploy
    assert events.index(f"ECS: {unable}") < events.index(f"Rolling back to {OLD_TASK_DEFINITION}: {run.error}")


def test_a_rollback_that_itself_fails_ends_failed_telling_to_check_the_service_and_locks(
    aws, users, environment, release
):
    expect_read_and_register(aws, release)
    expect_deploy_update(aws)
    expect_circuit_breaker_rolled_back(aws)
    failed = ours("FAILED", status="ACTIVE", reason=CIRCUIT_BREAKER_REASON, running=0)
    expect_update(aws, OLD_TASK_DEFINITION, ECS_ROLLBACK, [failed])
    rollback_reason = f"ECS deployment {ECS_ROLLBACK} failed: tasks failed to start."
    expect_service(
        aws,
        OLD_TASK_DEFINITION,
        [
            deployment(ECS_ROLLBACK, OLD_TASK_DEFINITION, rollout_state="FAILED", reason=rollback_reason, running=0),
            failed,
        ],
    )

    run = deploy(environment, release, users)

    assert run.status == Status.FAILED, (run.error, messages(run))
    aws.assert_no_pending_responses()
    assert run.error.startswith(f"Rollout failed: {CIRCUIT_BREAKER_REASON}")
    assert f"The rollback to {OLD_TASK_DEFINITION} did not complete ({rollback_reason})" in run.error
    assert "check the service in the ECS console" in run.error
    events = messages(run)
    assert events[-1] == run.error
    assert f"Rolling back to {OLD_TASK_DEFINITION}: Rollout failed: {CIRCUIT_BREAKER_REASON}" in events
    assert not any(m.startswith(f"Rolled back to {OLD_TASK_DEFINITION}") for m in events)
    assert steps(run)[4:] == [(jobs.ROLLOUT, "failed"), (jobs.BAKE, "pending"), ("Roll back", "failed")]
    lock = EnvironmentLock.objects.get(environment=environment)
    assert lock.run is None
    assert lock.reason == f"Rollback by run #{run.pk} did not complete: {rollback_reason}"
    environment.refresh_from_db()
    assert environment.live_release is None


def test_a_cancel_during_the_rollout_rolls_back_to_the_end_and_locks(aws, users, environment, release):
    describes = itertools.count(1)

    def operator_cancels_on_the_first_rollout_poll(**kwargs):
        if next(describes) == 2:  # 1: read the service; 2: first poll of the rollout
            cancel(Run.objects.get(kind="deployments.deploy", status=Status.RUNNING), users["deployer"])

    aws.clients["ecs"].meta.events.register(
        "after-call.ecs.DescribeServices", operator_cancels_on_the_first_rollout_poll
    )
    expect_read_and_register(aws, release)
    expect_deploy_update(aws)
    expect_service(aws, NEW_TASK_DEFINITION, [ours("IN_PROGRESS")])
    # The roll back takes two polls: the cancel that started it must not stop it halfway.
    expect_update(aws, OLD_TASK_DEFINITION, OUR_ROLLBACK, [ours("IN_PROGRESS", status="ACTIVE")])
    expect_service(aws, OLD_TASK_DEFINITION, [deployment(OUR_ROLLBACK, OLD_TASK_DEFINITION, running=1)])
    expect_service(
        aws,
        OLD_TASK_DEFINITION,
        [deployment(OUR_ROLLBACK, OLD_TASK_DEFINITION, rollout_state="COMPLETED", running=2, reason="done")],
    )

    run = deploy(environment, release, users)

    assert_rolled_back_and_locked(run, environment, "canceled by an operator during the rollout")
    aws.assert_no_pending_responses()
    assert "Cancel requested by dana." in messages(run)
    assert [p["taskDefinition"] for p in aws.params("update_service")] == [NEW_TASK_DEFINITION, OLD_TASK_DEFINITION]
    assert steps(run)[4:] == [(jobs.ROLLOUT, "failed"), (jobs.BAKE, "pending"), ("Roll back", "done")]


def test_aws_failing_while_the_migration_runs_says_its_outcome_is_unknown(aws, users, environment, release):
    configure(environment, migration_command=MIGRATE)
    expect_read_and_register(aws, release)
    aws.ecs.add_response("run_task", stubs.run_task())
    aws.ecs.add_client_error("describe_tasks", "AccessDeniedException", "not allowed to describe tasks")

    run = deploy(environment, release, users)

    assert run.status == Status.FAILED, (run.error, messages(run))
    assert "migration task's outcome is unknown" in run.error
    assert "Nothing was changed" not in run.error
    assert "update_service" not in aws.operations()
