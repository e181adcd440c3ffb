"""A documented extension of moto's ECS model: deployments that roll out.

moto keeps a service's first deployment forever and never moves `rolloutState`. With this patch:

- update_service with a new task definition makes a new PRIMARY deployment (IN_PROGRESS, 0 tasks
  running); the previous PRIMARY becomes ACTIVE.
- Each describe_services advances it by the clock: tasks start over ROLLOUT_SECONDS, then the
  deployment is COMPLETED and the older deployments drain away.
- update_service with only a new desired count scales the PRIMARY deployment: tasks stop at once
  on a scale-in, and start over ROLLOUT_SECONDS on a scale-out (rolloutState does not move).
- If the new task definition's image tag ends in `-broken`, the tasks "fail to start". What
  follows is the service's own deploymentCircuitBreaker: with it on, after FAIL_SECONDS the
  deployment is FAILED with a circuit-breaker reason and a service event says so; with rollback
  on too, a new PRIMARY deployment of the last completed task definition rolls out in its place
  (as ECS does). With the breaker off, the deployment stays IN_PROGRESS, its failed tasks
  counting up, as ECS keeps trying.
- A service keeps the deploymentConfiguration it was created with (moto drops it), AWS's default
  when none was given: circuit breaker off, 100% minimum healthy, 200% maximum.
- Tasks on awsvpc get their network interface (moto 5.2 lacks the interface's private DNS name
  and fails RunTask there).

Timings come from SANDBOX_ROLLOUT_SECONDS (default 6) and SANDBOX_FAIL_SECONDS (default 4).
"""

from __future__ import annotations

import copy
import os
import time
from datetime import UTC, datetime

from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.moto_api._internal import mock_random

ROLLOUT_SECONDS = float(os.environ.get("SANDBOX_ROLLOUT_SECONDS", "6"))
FAIL_SECONDS = float(os.environ.get("SANDBOX_FAIL_SECONDS", "4"))
# CreateService's default (API reference, DeploymentConfiguration and DeploymentCircuitBreaker).
DEFAULT_DEPLOYMENT_CONFIGURATION = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}


def _now() -> datetime:
    return datetime.now(UTC)


def _image_tags(backend, task_definition_arn: str) -> list[str]:
    """The tags of every image in the task definition; an image given by digest is looked up in
    the sandbox's ECR, as the console deploys by digest."""
    from moto.ecr.models import ecr_backends

    definition = backend.describe_task_definition(task_definition_arn)
    tags = []
    for container in definition.container_definitions:
        image = container.get("image", "")
        if "@" in image:
            digest = image.rsplit("@", 1)[1]
            ecr = ecr_backends[backend.account_id][backend.region_name]
            tags += [
                t
                for repo in ecr.repositories.values()
                for i in repo.images
                if i.get_image_digest() == digest
                for t in i.image_tags
            ]
        elif ":" in image.rsplit("/", 1)[-1]:
            tags.append(image.rsplit(":", 1)[1])
    return tags


def _is_broken(backend, task_definition_arn: str) -> bool:
    return any(tag.endswith("-broken") for tag in _image_tags(backend, task_definition_arn))


def _new_deployment(service, task_definition: str) -> dict:
    deployment_id = f"ecs-svc/{mock_random.randint(0, 32**12)}"
    now = _now()
    return {
        "id": deployment_id,
        "status": "PRIMARY",
        "taskDefinition": task_definition,
        "desiredCount": service.desired_count,
        "pendingCount": service.desired_count,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now,
        "updatedAt": now,
        "launchType": service.launch_type,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {deployment_id} in progress.",
        "_started": time.monotonic(),  # private: the response serialiser emits only API shape members
    }


def _event(service, message: str) -> None:
    service.events.insert(0, {"id": str(mock_random.uuid4()), "createdAt": _now(), "message": message})


def _start_rollout(backend, service, task_definition: str) -> None:
    for deployment in service.deployments:
        if deployment["status"] == "PRIMARY":
            deployment["status"] = "ACTIVE"
    service.deployments.insert(0, _new_deployment(service, task_definition))
    service.task_definition = task_definition
    _event(service, f"(service {service.name}) has started 1 tasks: (task {mock_random.uuid4()}).")


def _scale(service, desired: int) -> None:
    primary = next((d for d in service.deployments if d["status"] == "PRIMARY"), None)
    if primary is None:
        return
    running = min(int(primary.get("runningCount") or 0), desired)
    primary.update(desiredCount=desired, runningCount=running, pendingCount=desired - running, updatedAt=_now())
    service.running_count, service.pending_count = running, desired - running
    if running < desired:
        primary["_scaling"] = (running, time.monotonic())


def _advance_scaling(service, primary: dict) -> None:
    start, started = primary["_scaling"]
    desired = primary["desiredCount"]
    elapsed = time.monotonic() - started
    running = desired if elapsed >= ROLLOUT_SECONDS else start + int((desired - start) * elapsed / ROLLOUT_SECONDS)
    primary.update(runningCount=running, pendingCount=desired - running, updatedAt=_now())
    service.running_count, service.pending_count = running, desired - running
    if running >= desired:
        del primary["_scaling"]
        _event(service, f"(service {service.name}) has reached a steady state.")


def circuit_breaker(service) -> dict:
    configuration = getattr(service, "deployment_configuration", None) or DEFAULT_DEPLOYMENT_CONFIGURATION
    return configuration.get("deploymentCircuitBreaker") or {"enable": False, "rollback": False}


def advance(backend, service) -> None:
    primary = next((d for d in service.deployments if d["status"] == "PRIMARY"), None)
    if primary is not None and "_scaling" in primary and primary.get("rolloutState") != "IN_PROGRESS":
        _advance_scaling(service, primary)
        return
    if primary is None or primary.get("rolloutState") != "IN_PROGRESS" or "_started" not in primary:
        return
    elapsed = time.monotonic() - primary["_started"]
    broken = _is_broken(backend, primary["taskDefinition"])
    if broken:
        primary["failedTasks"] = int(elapsed)
        breaker = circuit_breaker(service)
        if elapsed < FAIL_SECONDS or not breaker.get("enable"):
            return
        primary.update(
            status="ACTIVE",
            rolloutState="FAILED",
            updatedAt=_now(),
            rolloutStateReason="ECS deployment circuit breaker: tasks failed to start.",
        )
        _event(
            service, f"(service {service.name}) deployment {primary['id']} deployment failed: tasks failed to start."
        )
        previous = next((d for d in service.deployments if d is not primary), None)
        if previous is not None and breaker.get("rollback"):
            _event(service, f"(service {service.name}) rolling back to deployment {previous['id']}.")
            _start_rollout(backend, service, previous["taskDefinition"])
        return
    running = min(service.desired_count, int(service.desired_count * elapsed / ROLLOUT_SECONDS))
    primary.update(runningCount=running, pendingCount=service.desired_count - running, updatedAt=_now())
    if elapsed >= ROLLOUT_SECONDS:
        primary.update(
            runningCount=service.desired_count,
            pendingCount=0,
            rolloutState="COMPLETED",
            rolloutStateReason=f"ECS deployment {primary['id']} completed.",
        )
        service.deployments[:] = [primary]
        service.running_count = service.desired_count
        _event(service, f"(service {service.name}) has reached a steady state.")


def _private_dns_name(interface) -> str:
    region = interface.ec2_backend.region_name
    suffix = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"ip-{interface.private_ip_address.replace('.', '-')}.{suffix}"


def install() -> None:
    if not hasattr(NetworkInterface, "private_dns_name"):
        NetworkInterface.private_dns_name = property(_private_dns_name)
    backend_class = ecs_models.EC2ContainerServiceBackend
    responses = ecs_responses.EC2ContainerServiceResponse
    original_create_response = responses.create_service
    original_create = backend_class.create_service
    original_update = backend_class.update_service
    original_describe = backend_class.describe_services

    def create_service(self, *args, **kwargs):
        # A new service starts steady: its first deployment has completed.
        service = original_create(self, *args, **kwargs)
        for deployment in service.deployments:
            deployment.update(
                rolloutState="COMPLETED",
                runningCount=service.desired_count,
                pendingCount=0,
                rolloutStateReason=f"ECS deployment {deployment['id']} completed.",
            )
        service.running_count, service.pending_count = service.desired_count, 0
        return service

    def update_service(self, service_properties):
        cluster = service_properties.get("cluster", "default")
        name = service_properties["service"].split("/")[-1]
        new_definition = service_properties.get("task_definition")
        desired = service_properties.get("desired_count")
        force = service_properties.get("force_new_deployment")
        before = self._get_service(cluster, name).task_definition
        service = original_update(self, service_properties)
        started = False
        if new_definition:
            arn = self.describe_task_definition(new_definition).arn
            service.task_definition = before
            if arn != before or force:
                _start_rollout(self, service, arn)
                started = True
        if desired is not None and not started:
            _scale(service, int(desired))
        return service

    def describe_services(self, cluster_str, service_names_or_arns):
        result, failures = original_describe(self, cluster_str, service_names_or_arns)
        for service in result:
            advance(self, service)
        return result, failures

    def create_service_response(self):
        result = original_create_response(self)
        result.result["service"].deployment_configuration = copy.deepcopy(
            self._get_param("deploymentConfiguration") or DEFAULT_DEPLOYMENT_CONFIGURATION
        )
        return result

    backend_class.create_service = create_service
    responses.create_service = create_service_response
    backend_class.update_service = update_service
    backend_class.describe_services = describe_services
