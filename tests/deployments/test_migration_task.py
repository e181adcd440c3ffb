"""The migration task against ECS's answers (Stubber): RunTask failures that pass and those that do
not, DescribeTasks not knowing the task yet, and a task that stopped before its container ran."""

from __future__ import annotations

import functools
import itertools

import pytest

from deployments import ecs, jobs
from opsconsole.runs.models import EnvironmentLock, Status
from tests.deployments import stubs, test_aws_failures
from tests.deployments.stubs import CLUSTER, CLUSTER_ARN, CONTAINER, MIGRATION_TASK, NEW_TASK_DEFINITION
from tests.deployments.test_aws_failures import (
    ALARM,
    MIGRATE,
    configure,
    deploy,
    expect_alarms,
    expect_deploy_update,
    expect_read_and_register,
    expect_service,
    messages,
    ours,
)

pytestmark = pytest.mark.django_db(transaction=True)

# The stubbed clients and the environment wired to them, as in test_aws_failures.
aws, environment, release = test_aws_failures.aws, test_aws_failures.environment, test_aws_failures.release

CAPACITY = "Capacity is unavailable at this time. Please try again later or in a different availability zone"
DESCRIBE_TASK = {"cluster": CLUSTER, "tasks": [MIGRATION_TASK]}


def not_placed(reason: str, detail: str = "") -> dict:
    """RunTask's answer when ECS placed nothing (HTTP 200, a Failure per task it could not run)."""
    failure = {"arn": CLUSTER_ARN, "reason": reason}
    if detail:
        failure["detail"] = detail
    return {"tasks": [], "failures": [failure]}


def missing() -> dict:
    return {"tasks": [], "failures": [{"arn": MIGRATION_TASK, "reason": "MISSING"}]}


def expect_migration_succeeds_and_the_deploy_completes(aws) -> None:
    aws.ecs.add_response("describe_tasks", stubs.describe_tasks("STOPPED", 0, "Essential container in task exited"))
    expect_deploy_update(aws)
    expect_service(aws, NEW_TASK_DEFINITION, [ours("COMPLETED", running=2, reason="done")])
    expect_alarms(aws, stubs.alarm(ALARM))


def assert_failed_before_the_service_changed(run, aws, environment) -> None:
    assert run.status == Status.FAILED, (run.error, messages(run))
    aws.assert_no_pending_responses()
    assert "update_service" not in aws.operations()
    assert "the service was not touched" in run.error or "Nothing was changed on the service." in run.error
    assert not EnvironmentLock.objects.filter(environment=environment).exists()


def test_run_task_failures_that_pass_are_retried_with_backoff(aws, users, environment, release, monkeypatch):
    configure(environment, migration_command=MIGRATE)
    pauses: list[float] = []
    monkeypatch.setattr(jobs, "Poller", functools.partial(ecs.Poller, sleep=pauses.append))
    expect_read_and_register(aws, release)
    aws.ecs.add_response("run_task", not_placed("RESOURCE:ENI"))
    aws.ecs.add_response("run_task", not_placed(CAPACITY))
    aws.ecs.add_response("run_task", stubs.run_task())
    expect_migration_succeeds_and_the_deploy_completes(aws)

    run = deploy(environment, release, users)

    assert run.status == Status.SUCCEEDED, (run.error, messages(run))
    aws.assert_no_pending_responses()
    tokens = [params["clientToken"] for params in aws.params("run_task")]
    assert len(set(tokens)) == 3  # nothing was placed: each attempt is a new request
    retries = [m for m in messages(run) if m.startswith("ECS could not place the migration task")]
    assert retries[0].startswith(f"ECS could not place the migration task (RESOURCE:ENI {CLUSTER_ARN}); retrying")
    assert retries[1].startswith(f"ECS could not place the migration task ({CAPACITY} {CLUSTER_ARN}); retrying")
    assert [r[-12:] for r in retries] == ["(attempt 1).", "(attempt 2)."]
    assert pauses[1] == 2 * pauses[0]  # backoff
    assert "Migrations finished with exit code 0." in messages(run)


def test_run_task_answered_with_an_error_is_retried_with_the_same_client_token(aws, users, environment, release):
    """A 5xx may come after ECS started the task: the retry must be the same request (clientToken,
    ECS_Idempotency in the API reference), or a lost answer starts a second migration."""
    configure(environment, migration_command=MIGRATE)
    expect_read_and_register(aws, release)
    aws.ecs.add_client_error("run_task", service_error_code="ServerException", http_status_code=500)
    aws.ecs.add_response("run_task", stubs.run_task())
    expect_migration_succeeds_and_the_deploy_completes(aws)

    run = deploy(environment, release, users)

    assert run.status == Status.SUCCEEDED, (run.error, messages(run))
    aws.assert_no_pending_responses()
    first, second = aws.params("run_task")
    assert first["clientToken"] and first["clientToken"] == second["clientToken"]


def test_run_task_failures_that_do_not_pass_fail_the_deploy_after_the_attempts(
    aws, users, environment, release, monkeypatch
):
    configure(environment, migration_command=MIGRATE)
    monkeypatch.setattr(ecs, "RUN_TASK_ATTEMPTS", 3)
    expect_read_and_register(aws, release)
    for _ in range(3):
        aws.ecs.add_response("run_task", not_placed("RESOURCE:ENI"))

    run = deploy(environment, release, users)

    assert_failed_before_the_service_changed(run, aws, environment)
    assert run.error == (
        f"The migration task could not start: ECS answered RESOURCE:ENI {CLUSTER_ARN} to 3 attempts; try again "
        "later. Nothing was changed on the service."
    )


def test_a_run_task_failure_that_will_not_pass_is_shown_as_ecs_gave_it_without_retrying(
    aws, users, environment, release
):
    configure(environment, migration_command=MIGRATE)
    expect_read_and_register(aws, release)
    aws.ecs.add_response(
        "run_task",
        not_placed(
            "ATTRIBUTE", "The task definition requires attribute ecs.capability.secrets.asm.environment-variables"
        ),
    )

    run = deploy(environment, release, users)

    assert_failed_before_the_service_changed(run, aws, environment)
    assert len(aws.params("run_task")) == 1
    assert run.error == (
        "The migration task could not start: ATTRIBUTE (The task definition requires attribute "
        f"ecs.capability.secrets.asm.environment-variables) {CLUSTER_ARN}. Nothing was changed on the service."
    )


def test_describe_tasks_not_knowing_the_task_just_started_is_waited_through(aws, users, environment, release):
    configure(environment, migration_command=MIGRATE)
    expect_read_and_register(aws, release)
    aws.ecs.add_response("run_task", stubs.run_task())
    aws.ecs.add_response("describe_tasks", missing(), DESCRIBE_TASK)
    aws.ecs.add_response("describe_tasks", stubs.describe_tasks("RUNNING"), DESCRIBE_TASK)
    expect_migration_succeeds_and_the_deploy_completes(aws)

    run = deploy(environment, release, users)

    assert run.status == Status.SUCCEEDED, (run.error, messages(run))
    aws.assert_no_pending_responses()
    assert f"DescribeTasks does not show the migration task yet (MISSING {MIGRATION_TASK}); waiting." in messages(run)


def test_a_task_describe_tasks_never_knows_fails_saying_its_outcome_is_unknown(
    aws, users, environment, release, monkeypatch
):
    configure(environment, migration_command=MIGRATE)
    monkeypatch.setattr(ecs, "MISSING_TASK_SECONDS", 2)
    ticks = itertools.count()
    monkeypatch.setattr(jobs, "Poller", functools.partial(ecs.Poller, clock=lambda: next(ticks)))
    expect_read_and_register(aws, release)
    aws.ecs.add_response("run_task", stubs.run_task())
    for _ in range(3):
        aws.ecs.add_response("describe_tasks", missing(), DESCRIBE_TASK)

    run = deploy(environment, release, users)

    assert_failed_before_the_service_changed(run, aws, environment)
    assert run.error.startswith(f"ECS does not know the migration task {MIGRATION_TASK} (DescribeTasks: MISSING")
    assert "its outcome is unknown" in run.error


def test_a_task_whose_container_never_started_says_why_in_ecs_words(aws, users, environment, release):
    configure(environment, migration_command=MIGRATE)
    pull = (
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/api@sha256:abab: not found"
    )
    never_ran = stubs.describe_tasks("STOPPED")
    task = never_ran["tasks"][0]
    task.update(stopCode="TaskFailedToStart", stoppedReason="Task failed to start", stoppedAt=stubs.AT)
    task["containers"][0]["reason"] = pull
    expect_read_and_register(aws, release)
    aws.ecs.add_response("run_task", stubs.run_task())
    aws.ecs.add_response("describe_tasks", never_ran, DESCRIBE_TASK)

    run = deploy(environment, release, users)

    assert_failed_before_the_service_changed(run, aws, environment)
    assert run.error == (
        f"The migration task stopped before its container {CONTAINER} exited (TaskFailedToStart: Task failed to "
        f"start; container {CONTAINER}: no exit code ({pull})); the service was not touched."
    )
    assert "None" not in run.error
