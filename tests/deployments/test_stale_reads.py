"""Deploys on a sandbox whose reads lag its writes, as ECS's may, and whose RunTask first finds no
room: every first DescribeServices after UpdateService shows the service as before the update,
every first DescribeTasks after RunTask answers MISSING, and the first two RunTask calls in each
test place nothing (RESOURCE:ENI, then no Fargate capacity)."""

from __future__ import annotations

import pytest

from deployments.services import request_deploy
from opsconsole.runs.models import EnvironmentLock, Status
from sandbox.bootstrap import clients
from sandbox.process import free_port, start_aws

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CAPACITY = "Capacity is unavailable at this time. Please try again later or in a different availability zone"


@pytest.fixture(scope="module")
def sandbox_endpoint():
    """This module's own sandbox AWS: the shared one reads consistently."""
    env = {
        "PATH": "/usr/bin:/bin",
        "SANDBOX_ROLLOUT_SECONDS": "0.6",
        "SANDBOX_FAIL_SECONDS": "0.4",
        "SANDBOX_STALE_READS": "1",
        "SANDBOX_RUNTASK_FAILURES": f"RESOURCE:ENI,{CAPACITY}",
    }
    process, endpoint = start_aws(free_port(), env, quiet=True)
    yield endpoint
    process.terminate()
    process.wait(timeout=10)


def messages(run) -> list[str]:
    return list(run.events.order_by("seq").values_list("message", flat=True))


def deploy(environment, release, user):
    run = request_deploy(environment, release, user)
    run.refresh_from_db()
    return run


def test_a_first_read_that_does_not_show_the_update_yet_is_waited_through(users, staging_aws, releases, stack):
    staging_aws.migration_command = []
    staging_aws.save()
    release = releases["v1.1.0"]

    run = deploy(staging_aws, release, users["deployer"])

    assert run.status == Status.SUCCEEDED, (run.error, messages(run))
    events = messages(run)
    assert any(m.startswith("DescribeServices does not show the deployment ecs-svc/") for m in events)
    assert "Rollout completed." in events
    assert not EnvironmentLock.objects.filter(environment=staging_aws).exists()
    staging_aws.refresh_from_db()
    assert staging_aws.live_release == release


def test_a_broken_release_is_still_rolled_back_by_the_circuit_breaker(users, staging_aws, releases, stack):
    staging_aws.migration_command = []
    staging_aws.save()
    good = releases["v1.1.0"]
    assert deploy(staging_aws, good, users["deployer"]).status == Status.SUCCEEDED

    run = deploy(staging_aws, releases["v1.3.0-broken"], users["deployer"])

    assert run.status == Status.ROLLED_BACK, (run.error, messages(run))
    assert "circuit breaker" in run.error
    ecs = clients(stack.endpoint)("ecs")
    service = ecs.describe_services(cluster=staging_aws.ecs_cluster, services=[staging_aws.ecs_service])
    definition = ecs.describe_task_definition(taskDefinition=service["services"][0]["taskDefinition"])
    assert definition["taskDefinition"]["containerDefinitions"][0]["image"] == good.image


def test_the_migration_task_is_retried_while_ecs_cannot_place_it_and_waited_for_while_missing(
    users, staging_aws, releases, stack
):
    release = releases["v1.1.0"]

    run = deploy(staging_aws, release, users["deployer"])

    assert run.status == Status.SUCCEEDED, (run.error, messages(run))
    events = messages(run)
    retries = [m for m in events if m.startswith("ECS could not place the migration task")]
    assert len(retries) == 2
    assert retries[0].startswith("ECS could not place the migration task (RESOURCE:ENI arn:aws:ecs:")
    assert CAPACITY in retries[1] and retries[1].endswith("(attempt 2).")
    assert any(m.startswith("DescribeTasks does not show the migration task yet (MISSING") for m in events)
    assert "Migrations finished with exit code 0." in events
    # The task ran as the service's own tasks do: on Fargate, in its subnets.
    ecs = clients(stack.endpoint)("ecs")
    (task_arn,) = ecs.list_tasks(cluster=staging_aws.ecs_cluster, startedBy="opsconsole-migrate")["taskArns"]
    task = ecs.describe_tasks(cluster=staging_aws.ecs_cluster, tasks=[task_arn])["tasks"][0]
    assert task["launchType"] == "FARGATE"
    service = ecs.describe_services(cluster=staging_aws.ecs_cluster, services=[staging_aws.ecs_service])
    subnets = service["services"][0]["networkConfiguration"]["awsvpcConfiguration"]["subnets"]
    eni = next(a for a in task["attachments"] if a["type"] == "ElasticNetworkInterface")
    assert {d["name"]: d["value"] for d in eni["details"]}["subnetId"] == subnets[0]
