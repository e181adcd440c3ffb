"""ECS rules: Fargate runs awsvpc task definitions only, awsvpc needs a network configuration,
a CodeDeploy or external controller owns its service's task definition, and reads after a write
are eventually consistent.

Refusals (each cites the page of the ECS API reference or developer guide it follows):

- RegisterTaskDefinition requiring FARGATE with another network mode, or without task-level cpu
  or memory: ClientException (developer guide, "Amazon ECS task definition differences for
  Fargate": "Fargate task definitions require that the network mode is set to awsvpc", and
  "Task CPU and memory": task-level cpu and memory are required for Fargate).
- CreateService and RunTask on Fargate (launchType FARGATE, a FARGATE or FARGATE_SPOT capacity
  provider, or the cluster's default strategy naming one) with a task definition that does not
  support FARGATE: InvalidParameterException "Task definition does not support launch_type
  FARGATE." (API reference, CreateService/RunTask `launchType`; the task definition's
  `compatibilities`). UpdateService refuses such a task definition for a Fargate service too.
- CreateService and RunTask with an awsvpc task definition and no
  networkConfiguration.awsvpcConfiguration, or one without subnets: InvalidParameterException
  (API reference, CreateService `networkConfiguration`: "required for task definitions that use the
  awsvpc network mode"); a networkConfiguration for another network mode is refused as well.
- UpdateService with a task definition on a service whose deploymentController is CODE_DEPLOY or
  EXTERNAL: InvalidParameterException (API reference, UpdateService: with CODE_DEPLOY "If the
  network configuration, platform version, task definition, or load balancer need to be updated,
  create a new CodeDeploy deployment"; with EXTERNAL, "create a new task set").

Eventual consistency (API reference, "Eventual consistency" in Request syntax / developer guide
"Amazon ECS API eventual consistency": a read soon after a write may not show it yet):

- SANDBOX_STALE_READS (a chance, 0 to 1; default 0): after UpdateService, the service's next
  DescribeServices still shows it as it was before the update (its previous deployments only);
  after RunTask, the task's next DescribeTasks answers `failures: [{reason: MISSING}]`.
- SANDBOX_RUNTASK_FAILURES (comma-separated reasons; default none): the first RunTask calls in
  each region (one per reason, counted again after a reset) place no task and answer
  `failures: [{arn, reason}]` with that reason, as ECS does for RESOURCE:ENI or for Fargate
  capacity ("Capacity is unavailable at this time. ..."; developer guide, "API failure reasons").
"""

from __future__ import annotations

import copy
import os
import random

from moto.core.responses import ActionResult
from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import EcsClientException, InvalidParameterException, ServiceNotFoundException

STALE_READS = float(os.environ.get("SANDBOX_STALE_READS", "0") or 0)
RUN_TASK_FAILURES = tuple(r.strip() for r in os.environ.get("SANDBOX_RUNTASK_FAILURES", "").split(",") if r.strip())
FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")


def check_registration(requires_compatibilities: list[str] | None, network_mode: str | None, cpu, memory) -> None:
    if "FARGATE" not in (requires_compatibilities or []):
        return
    if network_mode != "awsvpc":
        raise EcsClientException("Fargate only supports network mode \u2018awsvpc\u2019.")
    for name, value in (("cpu", cpu), ("memory", memory)):
        if not value:
            raise EcsClientException(f"Fargate requires that '{name}' be defined at the task level.")


def uses_fargate(backend, cluster: str, launch_type: str | None, strategy: list[dict] | None) -> bool:
    if launch_type:
        return launch_type == "FARGATE"
    if not strategy:
        strategy = backend._get_cluster(cluster).default_capacity_provider_strategy or []
    return any(item.get("capacityProvider") in FARGATE_PROVIDERS for item in strategy)


def check_placement(definition, fargate: bool, network_configuration: dict | None) -> None:
    """What CreateService and RunTask refuse about where the task definition would run."""
    if fargate and "FARGATE" not in definition.compatibilities:
        raise InvalidParameterException("Task definition does not support launch_type FARGATE.")
    awsvpc = (network_configuration or {}).get("awsvpcConfiguration")
    if definition.network_mode == "awsvpc":
        if not awsvpc:
            raise InvalidParameterException(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified."
            )
        if not awsvpc.get("subnets"):
            raise InvalidParameterException("subnets can not be empty.")
    elif network_configuration:
        raise InvalidParameterException(
            "Network Configuration is not valid for the given networkMode of this task definition."
        )


def check_update(backend, cluster: str, name: str, task_definition: str | None) -> None:
    if not task_definition:
        return
    try:
        service = backend._get_service(cluster, name)
    except ServiceNotFoundException:
        return  # moto refuses it in its own words
    controller = (service.deployment_controller or {}).get("type", "ECS")
    if controller == "CODE_DEPLOY":
        raise InvalidParameterException(
            "Unable to update task definition on services with a CODE_DEPLOY deployment controller. "
            "Use AWS CodeDeploy to trigger a new deployment."
        )
    if controller == "EXTERNAL":
        raise InvalidParameterException(
            "Unable to update task definition on services with a EXTERNAL deployment controller. "
            "Create a new task set to update the task definition."
        )
    if (
        service.launch_type == "FARGATE"
        and "FARGATE" not in backend.describe_task_definition(task_definition).compatibilities
    ):
        raise InvalidParameterException("Task definition does not support launch_type FARGATE.")


def as_before(service):
    """The service as a read that has not caught up with the next write will show it."""
    view = copy.copy(service)
    view.deployments = copy.deepcopy(service.deployments)
    view.events = list(service.events)
    return view


def _matches(task, requested: str) -> bool:
    return requested in (task.task_arn, task.id) or requested.rsplit("/", 1)[-1] == task.id


def install() -> None:
    responses = ecs_responses.EC2ContainerServiceResponse
    backend_class = ecs_models.EC2ContainerServiceBackend
    original_register = responses.register_task_definition
    original_create = responses.create_service
    original_update = responses.update_service
    original_run = responses.run_task
    original_describe_tasks = responses.describe_tasks
    original_backend_update = backend_class.update_service
    original_describe_services = backend_class.describe_services

    def register_task_definition(self):
        check_registration(
            self._get_param("requiresCompatibilities"),
            self._get_param("networkMode"),
            self._get_param("cpu"),
            self._get_param("memory"),
        )
        return original_register(self)

    def create_service(self):
        cluster = self._get_param("cluster", "default")
        if self._get_param("taskDefinition"):
            definition = self.ecs_backend.describe_task_definition(self._get_param("taskDefinition"))
            fargate = uses_fargate(
                self.ecs_backend, cluster, self._get_param("launchType"), self._get_param("capacityProviderStrategy")
            )
            check_placement(definition, fargate, self._get_param("networkConfiguration"))
        return original_create(self)

    def update_service(self):
        check_update(
            self.ecs_backend,
            self._get_param("cluster", "default"),
            self._get_param("service").split("/")[-1],
            self._get_param("taskDefinition"),
        )
        return original_update(self)

    def run_task(self):
        backend, cluster = self.ecs_backend, self._get_param("cluster", "default")
        definition = backend.describe_task_definition(self._get_param("taskDefinition"))
        fargate = uses_fargate(
            backend, cluster, self._get_param("launchType"), self._get_param("capacityProviderStrategy")
        )
        check_placement(definition, fargate, self._get_param("networkConfiguration"))
        given = backend.__dict__.get("_strict_run_task_failures", 0)
        if given < len(RUN_TASK_FAILURES):
            backend._strict_run_task_failures = given + 1
            arn = backend._get_cluster(cluster).arn
            return ActionResult({"tasks": [], "failures": [{"arn": arn, "reason": RUN_TASK_FAILURES[given]}]})
        result = original_run(self)
        unseen = backend.__dict__.setdefault("_strict_unseen_tasks", set())
        unseen.update(t.task_arn for t in result.result["tasks"] if random.random() < STALE_READS)
        return result

    def describe_tasks(self):
        # moto answers only the tasks it found; ECS names each one it did not as MISSING.
        result = original_describe_tasks(self)
        unseen = self.ecs_backend.__dict__.get("_strict_unseen_tasks", set())
        found = result.result["tasks"]
        shown = [t for t in found if t.task_arn not in unseen]
        unseen.difference_update(t.task_arn for t in found)
        failures = [
            {"arn": requested, "reason": "MISSING"}
            for requested in self._get_param("tasks", [])
            if not any(_matches(t, requested) for t in shown)
        ]
        return ActionResult({**result.result, "tasks": shown, "failures": failures})

    def backend_update_service(self, service_properties):
        cluster = service_properties.get("cluster", "default")
        before = as_before(self._get_service(cluster, service_properties["service"].split("/")[-1]))
        service = original_backend_update(self, service_properties)
        if random.random() < STALE_READS:
            service._stale_view = before
        return service

    def describe_services(self, cluster_str, service_names_or_arns):
        found, failures = original_describe_services(self, cluster_str, service_names_or_arns)
        return [s.__dict__.pop("_stale_view", None) or s for s in found], failures

    responses.register_task_definition = register_task_definition
    responses.create_service = create_service
    responses.update_service = update_service
    responses.run_task = run_task
    responses.describe_tasks = describe_tasks
    backend_class.update_service = backend_update_service
    backend_class.describe_services = describe_services
