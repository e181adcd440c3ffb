"""Rolling deploys end to end against the sandbox AWS (moto server over HTTP)."""

import pytest

from deployments.models import Deployment
from deployments.services import request_deploy
from opsconsole.runs.models import EnvironmentLock, Status
from opsconsole.runs.services import Refused
from sandbox.bootstrap import clients

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def service_image(stack, environment) -> str:
    ecs = clients(stack.endpoint)("ecs")
    service = ecs.describe_services(cluster=environment.ecs_cluster, services=[environment.ecs_service])["services"][0]
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    return definition["containerDefinitions"][0]["image"]


def test_a_deploy_rolls_out_the_release_and_records_it(users, staging_aws, releases, stack):
    release = releases["v1.1.0"]
    run = request_deploy(staging_aws, release, users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, (run.error, list(run.events.values_list("message", flat=True)))
    assert service_image(stack, staging_aws) == release.image
    staging_aws.refresh_from_db()
    assert staging_aws.live_release == release
    deployment = Deployment.objects.get(run=run)
    assert deployment.previous_task_definition_arn.endswith(":1")
    assert deployment.task_definition_arn.endswith(":2")
    assert [step["state"] for step in run.steps] == ["done"] * 6
    messages = list(run.events.values_list("message", flat=True))
    assert any(m.startswith("Migration task") for m in messages)
    assert "Migrations finished with exit code 0." in messages
    assert not EnvironmentLock.objects.filter(environment=staging_aws).exists()


def test_a_broken_release_is_rolled_back_automatically_and_the_environment_locked(users, staging_aws, releases, stack):
    good = releases["v1.1.0"]
    request_deploy(staging_aws, good, users["deployer"])
    run = request_deploy(staging_aws, releases["v1.3.0-broken"], users["deployer"])
    run.refresh_from_db()
    assert run.status == Status.ROLLED_BACK
    assert "circuit breaker" in run.error
    assert service_image(stack, staging_aws) == good.image
    staging_aws.refresh_from_db()
    assert staging_aws.live_release == good
    lock = EnvironmentLock.objects.get(environment=staging_aws)
    assert lock.run is None and lock.reason.startswith(f"Rolled back by run #{run.pk}")
    with pytest.raises(Refused, match="is locked by opsconsole"):
        request_deploy(staging_aws, good, users["deployer"])


def test_with_the_services_circuit_breaker_off_the_rollout_timeout_rolls_a_broken_release_back(
    users, staging_aws, releases, stack
):
    good = releases["v1.1.0"]
    request_deploy(staging_aws, good, users["deployer"])
    ecs = clients(stack.endpoint)("ecs")
    off = {"deploymentCircuitBreaker": {"enable": False, "rollback": False}}
    ecs.update_service(cluster=staging_aws.ecs_cluster, service=staging_aws.ecs_service, deploymentConfiguration=off)
    staging_aws.rollout_timeout_seconds = 2
    staging_aws.save()

    run = request_deploy(staging_aws, releases["v1.3.0-broken"], users["deployer"])

    run.refresh_from_db()
    messages = list(run.events.values_list("message", flat=True))
    assert run.status == Status.ROLLED_BACK, (run.error, messages)
    assert run.error == "Rollout failed: the rollout did not complete within 2s"
    assert any(m.startswith("The service's deployment circuit breaker is off") for m in messages)
    assert service_image(stack, staging_aws) == good.image
    service = ecs.describe_services(cluster=staging_aws.ecs_cluster, services=[staging_aws.ecs_service])["services"][0]
    assert service["deploymentConfiguration"] == off  # the console left the service's setting alone
