"""Response bodies for botocore's Stubber, shaped as in the AWS API reference (ECS and CloudWatch),
and a small harness that hands stubbed clients to the deploy job and records the calls it makes."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import boto3
from botocore import xform_name
from botocore.stub import Stubber

ACCOUNT = "123456789012"
REGION = "us-east-1"
CLUSTER = "staging"
SERVICE = "staging-api"
CONTAINER = "api"
FAMILY = "staging-api"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"
SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{CLUSTER}/{SERVICE}"
OLD_TASK_DEFINITION = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{FAMILY}:7"
NEW_TASK_DEFINITION = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{FAMILY}:8"
OLD_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/api@sha256:{'0' * 64}"
MIGRATION_TASK = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/0f5c3e8a9d1b4c7e8f2a6b3d9e1c4a7b"
NETWORK = {
    "awsvpcConfiguration": {
        "subnets": ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"],
        "securityGroups": ["sg-0123456789abcdef0"],
        "assignPublicIp": "DISABLED",
    }
}
CIRCUIT_BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
AT = datetime(2025, 6, 3, 14, 0, tzinfo=UTC)

# --- ECS ------------------------------------------------------------------------------------------


def deployment(
    deployment_id: str,
    task_definition: str,
    *,
    status: str = "PRIMARY",
    rollout_state: str = "IN_PROGRESS",
    reason: str = "",
    running: int = 1,
    desired: int = 2,
    failed: int = 0,
) -> dict:
    """One entry of Service.deployments."""
    return {
        "id": deployment_id,
        "status": status,
        "taskDefinition": task_definition,
        "desiredCount": desired,
        "pendingCount": desired - running,
        "runningCount": running,
        "failedTasks": failed,
        "createdAt": AT,
        "updatedAt": AT,
        "launchType": "FARGATE",
        "platformVersion": "1.4.0",
        "networkConfiguration": NETWORK,
        "rolloutState": rollout_state,
        "rolloutStateReason": reason or f"ECS deployment {deployment_id} in progress.",
    }


def event(event_id: str, message: str) -> dict:
    """One entry of Service.events (ECS lists them newest first)."""
    return {"id": event_id, "createdAt": AT, "message": message}


def service(task_definition: str, deployments: list[dict], events: list[dict] | None = None) -> dict:
    """One Service as DescribeServices and UpdateService return it."""
    return {
        "serviceArn": SERVICE_ARN,
        "serviceName": SERVICE,
        "clusterArn": CLUSTER_ARN,
        "status": "ACTIVE",
        "desiredCount": 2,
        "runningCount": 2,
        "pendingCount": 0,
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
        "taskDefinition": task_definition,
        "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100, **CIRCUIT_BREAKER},
        "deployments": deployments,
        "events": events or [event("e-0", f"(service {SERVICE}) has reached a steady state.")],
        "createdAt": AT,
        "networkConfiguration": NETWORK,
        "schedulingStrategy": "REPLICA",
        "deploymentController": {"type": "ECS"},
    }


def describe_services(task_definition: str, deployments: list[dict], events: list[dict] | None = None) -> dict:
    return {"services": [service(task_definition, deployments, events)], "failures": []}


def steady(task_definition: str = OLD_TASK_DEFINITION, deployment_id: str = "ecs-svc/1000000000000000001") -> dict:
    """The service before the deploy: one PRIMARY deployment, COMPLETED."""
    return describe_services(
        task_definition,
        [deployment(deployment_id, task_definition, rollout_state="COMPLETED", running=2, reason="done")],
    )


def container_definitions(image: str) -> list[dict]:
    """The app container (its image is what a deploy changes) and a log router sidecar (untouched)."""
    return [
        {
            "name": CONTAINER,
            "image": image,
            "cpu": 0,
            "essential": True,
            "portMappings": [{"containerPort": 8000, "hostPort": 8000, "protocol": "tcp"}],
            "environment": [{"name": "DJANGO_SETTINGS_MODULE", "value": "api.settings"}],
            "secrets": [
                {"name": "DATABASE_URL", "valueFrom": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db-AbCdEf"}
            ],
            "mountPoints": [],
            "volumesFrom": [],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": "/ecs/staging-api",
                    "awslogs-region": REGION,
                    "awslogs-stream-prefix": "api",
                },
            },
        },
        {
            "name": "log-router",
            "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.4",
            "cpu": 0,
            "essential": False,
            "firelensConfiguration": {"type": "fluentbit"},
            "mountPoints": [],
            "volumesFrom": [],
        },
    ]


# What describe_task_definition returns and register_task_definition must not be sent.
READ_ONLY = {
    "taskDefinitionArn": OLD_TASK_DEFINITION,
    "revision": 7,
    "status": "ACTIVE",
    "requiresAttributes": [
        {"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"},
        {"name": "ecs.capability.secrets.asm.environment-variables"},
        {"name": "com.amazonaws.ecs.capability.docker-remote-api.1.19"},
        {"name": "ecs.capability.task-eni"},
    ],
    "compatibilities": ["EC2", "FARGATE"],
    "registeredAt": AT,
    "registeredBy": f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-deployer/github-actions",
}
TAGS = [{"key": "team", "value": "platform"}, {"key": "service", "value": "api"}]


def registrable(image: str) -> dict:
    """The writable part of the task definition: what register_task_definition accepts."""
    return {
        "family": FAMILY,
        "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/staging-api-task",
        "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole",
        "networkMode": "awsvpc",
        "containerDefinitions": container_definitions(image),
        "volumes": [],
        "placementConstraints": [],
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "512",
        "memory": "1024",
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
    }


def describe_task_definition() -> dict:
    return {"taskDefinition": {**READ_ONLY, **registrable(OLD_IMAGE)}, "tags": TAGS}


def register_task_definition(image: str) -> dict:
    return {
        "taskDefinition": {
            **registrable(image),
            **READ_ONLY,
            "taskDefinitionArn": NEW_TASK_DEFINITION,
            "revision": 8,
        },
        "tags": TAGS,
    }


def task(last_status: str, exit_code: int | None = None, stopped_reason: str = "") -> dict:
    """The migration task as RunTask and DescribeTasks return it."""
    container = {
        "containerArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container/{CLUSTER}/0f5c3e8a/5d3b1c2e",
        "taskArn": MIGRATION_TASK,
        "name": CONTAINER,
        "lastStatus": last_status,
    }
    if exit_code is not None:
        container["exitCode"] = exit_code
    found = {
        "taskArn": MIGRATION_TASK,
        "clusterArn": CLUSTER_ARN,
        "taskDefinitionArn": NEW_TASK_DEFINITION,
        "lastStatus": last_status,
        "desiredStatus": "STOPPED" if last_status == "STOPPED" else "RUNNING",
        "launchType": "FARGATE",
        "startedBy": "opsconsole-migrate",
        "group": f"family:{FAMILY}",
        "createdAt": AT,
        "containers": [container],
    }
    if stopped_reason:
        found.update(stoppedReason=stopped_reason, stopCode="EssentialContainerExited", stoppedAt=AT)
    return found


def run_task() -> dict:
    return {"tasks": [task("PROVISIONING")], "failures": []}


def describe_tasks(last_status: str, exit_code: int | None = None, stopped_reason: str = "") -> dict:
    return {"tasks": [task(last_status, exit_code, stopped_reason)], "failures": []}


def update_service(task_definition: str, deployment_id: str, previous: list[dict] | None = None) -> dict:
    """UpdateService's answer: the new PRIMARY deployment, the earlier ones still ACTIVE."""
    primary = deployment(deployment_id, task_definition, running=0)
    return {"service": service(task_definition, [primary, *(previous or [])])}


# --- CloudWatch -----------------------------------------------------------------------------------


def alarm(name: str, state: str = "OK", reason: str = "") -> dict:
    return {
        "AlarmName": name,
        "AlarmArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
        "ActionsEnabled": True,
        "StateValue": state,
        "StateReason": reason or "Threshold Crossed: no datapoints were received for 1 period.",
        "StateUpdatedTimestamp": AT,
        "MetricName": "HTTPCode_Target_5XX_Count",
        "Namespace": "AWS/ApplicationELB",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 5.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }


def describe_alarms(*alarms: dict) -> dict:
    return {"MetricAlarms": list(alarms), "CompositeAlarms": []}


# --- Harness --------------------------------------------------------------------------------------


class StubbedAws:
    """Real botocore clients with a Stubber each; `client()` stands in for opsconsole.aws.client."""

    def __init__(self):
        self.clients = {
            name: boto3.client(name, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
            for name in ("ecs", "cloudwatch")
        }
        self.calls: list[tuple[str, dict]] = []
        for client in self.clients.values():
            # provide-client-params fires before the Stubber checks anything, so even an
            # unexpected call is recorded.
            client.meta.events.register("provide-client-params", self._record)
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}
        self.ecs, self.cloudwatch = self.stubs["ecs"], self.stubs["cloudwatch"]

    def _record(self, params, model, **kwargs):
        self.calls.append((xform_name(model.name), copy.deepcopy(params)))

    def client(self, service: str, region: str, role_arn: str = ""):
        return self.clients[service]

    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]

    def params(self, operation: str) -> list[dict]:
        return [params for name, params in self.calls if name == operation]

    def activate(self) -> None:
        for stub in self.stubs.values():
            stub.activate()

    def deactivate(self) -> None:
        for stub in self.stubs.values():
            stub.deactivate()

    def assert_no_pending_responses(self) -> None:
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()
