"""The sandbox's ECS as strict as ECS (sandbox/strict/ecs.py), and its stack as terraform/ecs.tf says."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from infrastructure.policy import read_code
from sandbox.bootstrap import DR_REGION, clients

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"
CONTAINER = {"name": "api", "image": "sentinel-api:v1", "memory": 512, "essential": True}


def terraform(type_: str) -> dict[str, dict]:
    root = read_code(TERRAFORM).modules[0]
    return {block.name: block.body for block in root.of("resource", type_)}


@pytest.fixture
def ecs(stack):
    return clients(stack.endpoint)("ecs")


@pytest.fixture
def staging(stack, ecs):
    s = stack.environments["staging"]
    return ecs.describe_services(cluster=s.cluster, services=[s.service])["services"][0]


def refused(call, code: str, message: str) -> None:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["Error"]["Message"] == message


def bridge_definition(ecs) -> str:
    return ecs.register_task_definition(family="bridge", cpu="256", memory="512", containerDefinitions=[CONTAINER])[
        "taskDefinition"
    ]["taskDefinitionArn"]


def test_fargate_task_definitions_must_use_awsvpc_and_name_their_cpu_and_memory(ecs):
    fargate = {"family": "f", "requiresCompatibilities": ["FARGATE"], "containerDefinitions": [CONTAINER]}
    message = "Fargate only supports network mode \u2018awsvpc\u2019."
    refused(lambda: ecs.register_task_definition(**fargate, cpu="256", memory="512"), "ClientException", message)
    refused(
        lambda: ecs.register_task_definition(**fargate, networkMode="bridge", cpu="256", memory="512"),
        "ClientException",
        message,
    )
    refused(
        lambda: ecs.register_task_definition(**fargate, networkMode="awsvpc", memory="512"),
        "ClientException",
        "Fargate requires that 'cpu' be defined at the task level.",
    )


def test_a_task_definition_without_fargate_compatibility_is_refused_on_fargate(ecs, stack, staging):
    s, definition = stack.environments["staging"], bridge_definition(ecs)
    message = "Task definition does not support launch_type FARGATE."
    refused(
        lambda: ecs.create_service(
            cluster=s.cluster, serviceName="bridge", taskDefinition=definition, desiredCount=1, launchType="FARGATE"
        ),
        "InvalidParameterException",
        message,
    )
    refused(
        lambda: ecs.run_task(
            cluster=s.cluster,
            taskDefinition=definition,
            capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
        ),
        "InvalidParameterException",
        message,
    )
    refused(
        lambda: ecs.update_service(cluster=s.cluster, service=s.service, taskDefinition=definition),
        "InvalidParameterException",
        message,
    )


def test_awsvpc_needs_a_network_configuration_with_subnets_and_other_modes_refuse_one(ecs, stack, staging):
    s = stack.environments["staging"]
    run = dict(cluster=s.cluster, taskDefinition=staging["taskDefinition"], launchType="FARGATE")
    refused(
        lambda: ecs.run_task(**run),
        "InvalidParameterException",
        "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
    )
    refused(
        lambda: ecs.create_service(**{**run, "serviceName": "no-network", "desiredCount": 1}),
        "InvalidParameterException",
        "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
    )
    refused(
        lambda: ecs.run_task(**run, networkConfiguration={"awsvpcConfiguration": {"subnets": []}}),
        "InvalidParameterException",
        "subnets can not be empty.",
    )
    refused(
        lambda: ecs.run_task(
            cluster=s.cluster,
            taskDefinition=bridge_definition(ecs),
            launchType="EC2",
            networkConfiguration=staging["networkConfiguration"],
        ),
        "InvalidParameterException",
        "Network Configuration is not valid for the given networkMode of this task definition.",
    )
    started = ecs.run_task(**run, networkConfiguration=staging["networkConfiguration"])
    assert started["failures"] == [] and started["tasks"][0]["lastStatus"] == "RUNNING"


@pytest.mark.parametrize("controller", ["CODE_DEPLOY", "EXTERNAL"])
def test_a_service_another_controller_deploys_takes_no_task_definition_from_update_service(
    ecs, stack, staging, controller
):
    s = stack.environments["staging"]
    ecs.create_service(
        cluster=s.cluster,
        serviceName="by-another",
        taskDefinition=staging["taskDefinition"],
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration=staging["networkConfiguration"],
        deploymentController={"type": controller},
    )
    with pytest.raises(ClientError) as caught:
        ecs.update_service(cluster=s.cluster, service="by-another", taskDefinition=staging["taskDefinition"])
    assert caught.value.response["Error"]["Code"] == "InvalidParameterException"
    assert f"Unable to update task definition on services with a {controller} deployment controller." in str(
        caught.value
    )
    ecs.update_service(cluster=s.cluster, service="by-another", desiredCount=2)  # what it may change


def test_the_stack_runs_on_fargate_with_awsvpc_as_terraform_says(ecs, stack):
    services, definitions = terraform("aws_ecs_service"), terraform("aws_ecs_task_definition")
    definition = definitions["api"]
    for name, environment in stack.environments.items():
        for service, resource in (
            (environment.service, services["api"]),
            (environment.green_service, services["api_green"]),
        ):
            found = ecs.describe_services(cluster=environment.cluster, services=[service])["services"][0]
            assert found["launchType"] == resource["launch_type"]
            breaker = {k: v for k, v in resource["deployment_circuit_breaker"][0].items() if not k.startswith("__")}
            assert found["deploymentConfiguration"]["deploymentCircuitBreaker"] == breaker
            awsvpc = found["networkConfiguration"]["awsvpcConfiguration"]
            assert len(awsvpc["subnets"]) == 2 and len(awsvpc["securityGroups"]) == 1
            assert awsvpc["assignPublicIp"] == "DISABLED"  # terraform's default: private subnets
            task = ecs.describe_task_definition(taskDefinition=found["taskDefinition"])["taskDefinition"]
            assert task["networkMode"] == definition["network_mode"]
            assert task["requiresCompatibilities"] == definition["requires_compatibilities"]
            assert task["cpu"] and task["memory"] and task["executionRoleArn"]
        # The tasks sit in the private subnets, not in the load balancer's public ones.
        balancer = clients(stack.endpoint)("elbv2").describe_load_balancers(Names=[f"sentinel-{name}"])
        public = {zone["SubnetId"] for zone in balancer["LoadBalancers"][0]["AvailabilityZones"]}
        assert not public & set(awsvpc["subnets"])

        dr = clients(stack.endpoint, DR_REGION)("ecs")
        standby = dr.describe_services(cluster=environment.dr_cluster, services=[environment.dr_service])["services"][0]
        assert standby["launchType"] == "FARGATE"
        assert standby["networkConfiguration"]["awsvpcConfiguration"]["subnets"]
        assert standby["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
