"""What the rollout watch makes of ECS's answers (Stubber): a read that has not caught up with the
update, a rollback ECS began before our deployment was ever shown, a service another controller
deploys, and the service's own circuit breaker setting."""

from __future__ import annotations

import functools
import itertools

import pytest

from deployments import ecs, jobs
from opsconsole.runs.models import EnvironmentLock, Status
from tests.deployments import stubs, test_aws_failures
from tests.deployments.stubs import NEW_TASK_DEFINITION, OLD_TASK_DEFINITION, SERVICE, deployment, event
from tests.deployments.test_aws_failures import (
    ALARM,
    DESCRIBE_SERVICE,
    ECS_ROLLBACK,
    NEW_DEPLOYMENT,
    OLD_DEPLOYMENT,
    OUR_ROLLBACK,
    assert_rolled_back_and_locked,
    configure,
    deploy,
    expect_alarms,
    expect_deploy_update,
    expect_read_and_register,
    expect_service,
    expect_update,
    messages,
    ours,
)

pytestmark = pytest.mark.django_db(transaction=True)

# The stubbed clients and the environment wired to them, as in test_aws_failures.
aws, environment, release = test_aws_failures.aws, test_aws_failures.environment, test_aws_failures.release

OLD_STEADY = "e-0"


def stale():
    """DescribeServices before it shows the update: the old deployment only, as before the deploy."""
    return [deployment(OLD_DEPLOYMENT, OLD_TASK_DEFINITION, rollout_state="COMPLETED", running=2, reason="done")]


def ticking_clock(monkeypatch) -> None:
    """A clock that moves one second per reading, so bounds of a few seconds pass in a few polls."""
    ticks = itertools.count()
    monkeypatch.setattr(jobs, "Poller", functools.partial(ecs.Poller, clock=lambda: next(ticks)))


def test_a_first_read_that_does_not_show_our_deployment_yet_is_waited_through(aws, users, environment, release):
    expect_read_and_register(aws, release)
    expect_deploy_update(aws)
    expect_service(aws, OLD_TASK_DEFINITION, stale())
    expect_service(aws, NEW_TASK_DEFINITION, [ours("IN_PROGRESS")])
    expect_service(aws, NEW_TASK_DEFINITION, [ours("COMPLETED", running=2, reason="done")])
    expect_alarms(aws, stubs.alarm(ALARM))

    run = deploy(environment, release, users)

    assert run.status == Status.SUCCEEDED, (run.error, messages(run))
    aws.assert_no_pending_responses()
    events = messages(run)
    assert f"DescribeServices does not show the deployment {NEW_DEPLOYMENT} yet; waiting." in events
    assert not any(m.startswith("Rolling back") for m in events)
    assert not EnvironmentLock.objects.filter(environment=environment).exists()


def test_a_rollback_ecs_began_before_our_deployment_was_ever_shown_is_a_rollback(aws, users, environment, release):
    rolling_back = event("e-9", f"(service {SERVICE}) rolling back to deployment {ECS_ROLLBACK}.")
    steady = event(OLD_STEADY, f"(service {SERVICE}) has reached a steady state.")
    expect_read_and_register(aws, release)
    expect_deploy_update(aws)
    expect_service(aws, OLD_TASK_DEFINITION, stale(), [steady])
    expect_service(
        aws, OLD_TASK_DEFINITION, [deployment(ECS_ROLLBACK, OLD_TASK_DEFINITION, running=1)], [rolling_back, steady]
    )
    # The roll back: ECS already put the old revision back; UpdateService to it answers with ECS's
    # deployment, which completes.
    expect_update(aws, OLD_TASK_DEFINITION, ECS_ROLLBACK, [])
    done = deployment(ECS_ROLLBACK, OLD_TASK_DEFINITION, rollout_state="COMPLETED", running=2, reason="done")
    expect_service(aws, OLD_TASK_DEFINITION, [done])

    run = deploy(environment, release, users)

    reason = (
        f"Rollout failed: ECS replaced the deployment (the circuit breaker rolled it back) ({rolling_back['message']})."
    )
    assert_rolled_back_and_locked(run, environment, reason)
    aws.assert_no_pending_responses()
    assert [p["taskDefinition"] for p in aws.params("update_service")] == [NEW_TASK_DEFINITION, OLD_TASK_DEFINITION]


def test_reads_that_never_show_our_deployment_end_the_rollout_after_the_bound(
    aws, users, environment, release, monkeypatch
):
    monkeypatch.setattr(ecs, "STALE_READ_SECONDS", 2)
    ticking_clock(monkeypatch)
    expect_read_and_register(aws, release)
    expect_deploy_update(aws)
    for _ in range(3):
        expect_service(aws, OLD_TASK_DEFINITION, stale())
    # The roll back does not trust a read that shows the old revision (it may be as stale as these):
    # it updates the service back and follows the deployment UpdateService answered.
    expect_update(aws, OLD_TASK_DEFINITION, ECS_ROLLBACK, [ours("IN_PROGRESS", status="ACTIVE")])
    done = deployment(ECS_ROLLBACK, OLD_TASK_DEFINITION, rollout_state="COMPLETED", running=2, reason="done")
    expect_service(aws, OLD_TASK_DEFINITION, [done])

    run = deploy(environment, release, users)

    assert_rolled_back_and_locked(
        run, environment, f"Rollout failed: ECS did not show the deployment {NEW_DEPLOYMENT} within 2s of the update"
    )
    aws.assert_no_pending_responses()
    assert messages(run).count(f"DescribeServices does not show the deployment {NEW_DEPLOYMENT} yet; waiting.") == 2
    assert [p["taskDefinition"] for p in aws.params("update_service")] == [NEW_TASK_DEFINITION, OLD_TASK_DEFINITION]


@pytest.mark.parametrize(
    "controller, by",
    [("CODE_DEPLOY", "AWS CodeDeploy"), ("EXTERNAL", "an external deployment controller")],
)
def test_a_service_another_controller_deploys_is_refused_before_anything_changes(
    aws, users, environment, release, controller, by
):
    described = stubs.steady()
    described["services"][0]["deploymentController"] = {"type": controller}
    aws.ecs.add_response("describe_services", described, DESCRIBE_SERVICE)

    run = deploy(environment, release, users)

    assert run.status == Status.FAILED, (run.error, messages(run))
    aws.assert_no_pending_responses()
    assert aws.operations() == ["describe_services"]
    assert run.error.startswith(f"ECS service {SERVICE} is deployed by {by}")
    assert f"its deploymentController is {controller}" in run.error
    assert run.error.endswith("Nothing was changed on the service.")
    assert not EnvironmentLock.objects.filter(environment=environment).exists()


@pytest.mark.parametrize("strategy", ["BLUE_GREEN", "LINEAR", "CANARY"])
def test_a_service_ecs_deploys_with_its_own_strategy_is_refused_before_anything_changes(
    aws, users, environment, release, strategy
):
    described = stubs.steady()
    described["services"][0]["deploymentConfiguration"]["strategy"] = strategy
    aws.ecs.add_response("describe_services", described, DESCRIBE_SERVICE)

    run = deploy(environment, release, users)

    assert run.status == Status.FAILED, (run.error, messages(run))
    aws.assert_no_pending_responses()
    assert aws.operations() == ["describe_services"]
    assert run.error.startswith(f"ECS service {SERVICE} uses ECS's own {strategy} deployment strategy")
    assert run.error.endswith("Nothing was changed on the service.")


def test_the_service_keeps_its_own_circuit_breaker_and_without_it_the_timeout_rolls_back(
    aws, users, environment, release, monkeypatch
):
    configure(environment, rollout_timeout_seconds=1)
    ticking_clock(monkeypatch)
    expect_read_and_register(aws, release)
    old = deployment(OLD_DEPLOYMENT, OLD_TASK_DEFINITION, status="ACTIVE", rollout_state="COMPLETED", running=2)
    updated = stubs.update_service(NEW_TASK_DEFINITION, NEW_DEPLOYMENT, [old])
    updated["service"]["deploymentConfiguration"]["deploymentCircuitBreaker"] = {"enable": False, "rollback": False}
    aws.ecs.add_response(
        "update_service", updated, {"cluster": stubs.CLUSTER, "service": SERVICE, "taskDefinition": NEW_TASK_DEFINITION}
    )
    # Without the breaker, ECS keeps starting tasks that fail: the rollout stays IN_PROGRESS.
    expect_service(aws, NEW_TASK_DEFINITION, [ours("IN_PROGRESS", running=0), old])
    expect_service(aws, NEW_TASK_DEFINITION, [ours("IN_PROGRESS", running=0), old])
    expect_update(aws, OLD_TASK_DEFINITION, OUR_ROLLBACK, [ours("IN_PROGRESS", status="ACTIVE", running=0)])
    done = deployment(OUR_ROLLBACK, OLD_TASK_DEFINITION, rollout_state="COMPLETED", running=2, reason="done")
    expect_service(aws, OLD_TASK_DEFINITION, [done])

    run = deploy(environment, release, users)

    assert_rolled_back_and_locked(run, environment, "Rollout failed: the rollout did not complete within 1s")
    aws.assert_no_pending_responses()
    assert all("deploymentConfiguration" not in params for params in aws.params("update_service"))
    assert (
        "The service's deployment circuit breaker is off: ECS will not stop a failing rollout, so the rollout "
        "timeout decides." in messages(run)
    )
