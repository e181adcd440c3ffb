"""ECS, CloudWatch and ELB steps of a deploy, free of Django so they test against Stubber and moto.

Every wait is a poll with a deadline; transient AWS errors (throttling, 5xx) during a poll are
logged and retried with backoff, never treated as the outcome. ECS's reads are eventually
consistent (a DescribeServices or DescribeTasks soon after UpdateService or RunTask may not show
the change yet), so a read that has not caught up is waited through, within a bound, never taken
for the outcome either.
"""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

from deployments import prometheus
from opsconsole.aws import Poller, StepFailed


def registrable_fields(ecs) -> frozenset[str]:
    """What register_task_definition accepts, from botocore's model of the API (so a read-only
    field that describe_task_definition gains in a later API version is never sent back)."""
    return frozenset(ecs.meta.service_model.operation_model("RegisterTaskDefinition").input_shape.members)


# How long a read may lag the write before it: DescribeServices not showing the deployment
# UpdateService returned, DescribeTasks answering MISSING for the task RunTask started.
STALE_READ_SECONDS = 60
MISSING_TASK_SECONDS = 60

# RunTask `failures` that say "not now" rather than "never" (developer guide, "API failure
# reasons"): no room for the task's CPU, memory or network interface, or no Fargate capacity.
TRANSIENT_RUN_TASK_REASONS = ("RESOURCE:CPU", "RESOURCE:MEMORY", "RESOURCE:ENI")
CAPACITY_UNAVAILABLE = "capacity is unavailable at this time"
RUN_TASK_ATTEMPTS = 6
RUN_TASK_MAX_DELAY = 60.0

# Who rolls a service out, by its deploymentController.type; the console drives ECS's own only.
FOREIGN_CONTROLLERS = {
    "CODE_DEPLOY": "AWS CodeDeploy (create a CodeDeploy deployment instead)",
    "EXTERNAL": "an external deployment controller (through task sets)",
}


@dataclass
class Service:
    task_definition: str
    description: dict = field(repr=False)

    @property
    def controller(self) -> str:
        return (self.description.get("deploymentController") or {}).get("type") or "ECS"


def describe_service(ecs, poller: Poller, cluster: str, service: str) -> Service:
    found = poller.call(ecs.describe_services, cluster=cluster, services=[service])
    services = [s for s in found.get("services", []) if s.get("status") != "INACTIVE"]
    if not services:
        reasons = "; ".join(f.get("reason", "") for f in found.get("failures", []))
        raise StepFailed(f"ECS service {service} was not found in cluster {cluster} ({reasons or 'no such service'}).")
    return Service(services[0]["taskDefinition"], services[0])


def require_ecs_controller(service: Service, name: str) -> None:
    """Refuse a service ECS does not roll out itself (UpdateService cannot change its task
    definition, and its rollouts do not show in `deployments`), and one ECS rolls out with its own
    blue/green, linear or canary strategy (ECS would move the load balancer's traffic itself,
    against the console's steps)."""
    if service.controller != "ECS":
        by = FOREIGN_CONTROLLERS.get(service.controller, f"a {service.controller} deployment controller")
        raise StepFailed(
            f"ECS service {name} is deployed by {by}: its deploymentController is {service.controller}, and the "
            "console deploys only services whose deploymentController is ECS (rolling updates)."
        )
    strategy = service.description.get("deploymentConfiguration", {}).get("strategy", "ROLLING")
    if strategy != "ROLLING":
        raise StepFailed(
            f"ECS service {name} uses ECS's own {strategy} deployment strategy: ECS would shift its load "
            "balancer's traffic itself, against the console's steps. The console deploys services whose "
            "deploymentConfiguration.strategy is ROLLING (its blue/green uses two such services)."
        )


def register_revision(ecs, poller: Poller, current_arn: str, container: str, image: str) -> str:
    """A new revision of the current task definition that differs only in the container's image."""
    found = poller.call(ecs.describe_task_definition, taskDefinition=current_arn, include=["TAGS"])
    accepted = registrable_fields(ecs)
    definition = {key: value for key, value in found["taskDefinition"].items() if key in accepted}
    containers = definition.get("containerDefinitions", [])
    if not any(c.get("name") == container for c in containers):
        names = ", ".join(c.get("name", "?") for c in containers)
        raise StepFailed(f"Task definition {current_arn} has no container {container!r} (it has: {names}).")
    definition["containerDefinitions"] = [
        {**c, "image": image} if c.get("name") == container else c for c in containers
    ]
    if found.get("tags"):
        definition["tags"] = found["tags"]
    registered = poller.call(ecs.register_task_definition, **definition)
    return registered["taskDefinition"]["taskDefinitionArn"]


def run_migration(
    ecs,
    poller: Poller,
    cluster: str,
    task_definition: str,
    container: str,
    command: list[str],
    service: Service,
    timeout: float,
) -> None:
    """Run the migration command as a one-off task, placed and networked as the service's own
    tasks are, and wait for it to stop with exit code 0."""
    launch = {
        "cluster": cluster,
        "taskDefinition": task_definition,
        "count": 1,
        "startedBy": "opsconsole-migrate",
        "overrides": {"containerOverrides": [{"name": container, "command": command}]},
    }
    desc = service.description
    if desc.get("networkConfiguration"):
        launch["networkConfiguration"] = desc["networkConfiguration"]
    if desc.get("capacityProviderStrategy"):
        launch["capacityProviderStrategy"] = desc["capacityProviderStrategy"]
    elif desc.get("launchType"):
        launch["launchType"] = desc["launchType"]
    task_arn = start_task(ecs, poller, launch)
    poller.log(f"Migration task {task_arn.rsplit('/', 1)[-1]} started: {' '.join(command)}")
    task = wait_for_task(ecs, poller, cluster, task_arn, timeout)
    ours = next((c for c in task.get("containers", []) if c.get("name") == container), {})
    if ours.get("exitCode") != 0:
        raise StepFailed(f"{stopped(task, container)}; the service was not touched.")
    poller.log("Migrations finished with exit code 0.")


def _transient(failure: dict) -> bool:
    reason = failure.get("reason", "")
    return reason in TRANSIENT_RUN_TASK_REASONS or CAPACITY_UNAVAILABLE in reason.lower()


def _failures(failures: list[dict]) -> str:
    """RunTask's failures as ECS gave them: reason, detail and the resource's ARN."""
    return "; ".join(
        " ".join(
            part
            for part in (f.get("reason", ""), f"({f['detail']})" if f.get("detail") else "", f.get("arn", ""))
            if part
        )
        for f in failures
    )


def start_task(ecs, poller: Poller, launch: dict) -> str:
    """RunTask, retried with backoff while ECS answers a transient failure; returns the task's ARN.

    RunTask reports a task it could not place in `failures` (with HTTP 200), not as an error, and
    places nothing then, so trying again cannot start a second task. An error answer (a 5xx, a
    throttle) is retried by the poller with the same `clientToken`, so a call that did start the
    task before its answer was lost cannot start a second one (ECS_Idempotency in the API reference).
    """
    delay = max(poller.interval, 0.05)
    for attempt in range(1, RUN_TASK_ATTEMPTS + 1):
        started = poller.call(ecs.run_task, **launch, clientToken=str(uuid.uuid4()))
        if started.get("tasks"):
            return started["tasks"][0]["taskArn"]
        failures = started.get("failures", [])
        if not failures or not all(_transient(f) for f in failures):
            raise StepFailed(f"The migration task could not start: {_failures(failures) or 'no task was placed'}.")
        if attempt == RUN_TASK_ATTEMPTS:
            raise StepFailed(
                f"The migration task could not start: ECS answered {_failures(failures)} to {RUN_TASK_ATTEMPTS} "
                "attempts; try again later."
            )
        poller.log(
            f"ECS could not place the migration task ({_failures(failures)}); retrying in {delay:.1f}s "
            f"(attempt {attempt})."
        )
        poller.pause(delay)
        delay = min(delay * 2, RUN_TASK_MAX_DELAY)
    raise AssertionError("unreachable")


def wait_for_task(ecs, poller: Poller, cluster: str, task_arn: str, timeout: float) -> dict:
    """Poll DescribeTasks until the task is STOPPED; stop it after `timeout`.

    Soon after RunTask, DescribeTasks may not know the task yet (failures: MISSING): that is
    waited through for MISSING_TASK_SECONDS (at most the timeout), then reported.
    """
    now = poller.clock()
    deadline, missing_until = now + timeout, now + min(MISSING_TASK_SECONDS, timeout)
    seen = False
    while True:
        found = poller.call(ecs.describe_tasks, cluster=cluster, tasks=[task_arn])
        task = next(iter(found.get("tasks", [])), None)
        if task is None:
            reasons = _failures(found.get("failures", [])) or "no task and no failure"
            if seen or poller.clock() > missing_until:
                raise StepFailed(
                    f"ECS does not know the migration task {task_arn} (DescribeTasks: {reasons}); its outcome "
                    "is unknown, so the service was not touched: check the cluster's stopped tasks."
                )
            poller.log(f"DescribeTasks does not show the migration task yet ({reasons}); waiting.")
        else:
            seen = True
            if task.get("lastStatus") == "STOPPED":
                return task
            if poller.clock() > deadline:
                poller.call(ecs.stop_task, cluster=cluster, task=task_arn, reason="opsconsole: migration timed out")
                raise StepFailed(f"The migration task did not finish within {int(timeout)}s; it was stopped.")
        poller.wait()


def stopped(task: dict, container: str) -> str:
    """Why a stopped task did not succeed, in ECS's words: the stop code, the stopped reason, and
    each container's exit code or, for one that never ran to an exit, its reason."""
    ours = next((c for c in task.get("containers", []) if c.get("name") == container), {})
    if ours.get("exitCode") is not None:
        head = f"The migration task exited with code {ours['exitCode']}"
    else:
        head = f"The migration task stopped before its container {container} exited"
    details = []
    if task.get("stopCode") or task.get("stoppedReason"):
        details.append(": ".join(p for p in (task.get("stopCode"), task.get("stoppedReason")) if p))
    for c in task.get("containers", []):
        outcome = f"exit code {c['exitCode']}" if c.get("exitCode") is not None else "no exit code"
        details.append(f"container {c.get('name', '?')}: {outcome}" + (f" ({c['reason']})" if c.get("reason") else ""))
    return f"{head} ({'; '.join(details) or 'no reason given'})"


def update_service(
    ecs, poller: Poller, cluster: str, service: str, task_definition: str, desired_count: int | None = None
) -> str:
    """Point the service at `task_definition` (and, if given, at `desired_count` tasks in the same
    call); return the new deployment's id.

    The service keeps its own deploymentConfiguration (Terraform's, or whoever set it): the
    console does not turn the circuit breaker on or off, it says which it is. With the breaker
    off, ECS never fails the rollout, and the console's rollout timeout is what notices.
    """
    count = {} if desired_count is None else {"desiredCount": desired_count}
    updated = poller.call(
        ecs.update_service, cluster=cluster, service=service, taskDefinition=task_definition, **count
    )["service"]
    poller.log(describe_circuit_breaker(updated))
    primary = next((d for d in updated.get("deployments", []) if d.get("status") == "PRIMARY"), {})
    return primary.get("id", "")


def describe_circuit_breaker(service: dict) -> str:
    breaker = (service.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
    if not breaker.get("enable"):
        return (
            "The service's deployment circuit breaker is off: ECS will not stop a failing rollout, so the "
            "rollout timeout decides."
        )
    if not breaker.get("rollback"):
        return "The service's deployment circuit breaker is on, without rollback: the console rolls back."
    return "The service's deployment circuit breaker is on, with rollback."


@dataclass
class Rollout:
    completed: bool
    reason: str


def wait_for_rollout(
    ecs, poller: Poller, cluster: str, service: str, task_definition: str, deployment_id: str, timeout: float
) -> Rollout:
    """Follow our deployment's rolloutState (not task counts: list_tasks caps at 100).

    Ours is the deployment UpdateService returned (by id; by task definition when no id came
    back). COMPLETED: done. FAILED: the circuit breaker stopped it. Ours gone after it was seen,
    or an ECS event saying it failed or is being rolled back: ECS replaced it. Ours not shown yet
    (and no such event): a read that has not caught up with the update, waited through for
    STALE_READ_SECONDS at most. New service events (e.g. "unable to place a task") are logged as
    they appear.
    """
    now = poller.clock()
    deadline, stale_until = now + timeout, now + min(STALE_READ_SECONDS, timeout)
    seen_events: set[str] | None = None
    seen_ours = False
    while True:
        desc = describe_service(ecs, poller, cluster, service).description
        deployments = desc.get("deployments", [])
        if deployment_id:
            ours = next((d for d in deployments if d.get("id") == deployment_id), None)
        else:
            ours = next((d for d in deployments if d.get("taskDefinition") == task_definition), None)
        events = desc.get("events", [])[:50]
        if seen_events is None:
            # Events from before our deployment are history; those since it began are news.
            since = (ours or {}).get("createdAt")
            seen_events = {e.get("id") for e in events if since is None or e.get("createdAt", since) <= since}
        news = [e for e in reversed(events) if e.get("id") not in seen_events]
        for event in news:
            seen_events.add(event.get("id"))
            poller.log(f"ECS: {event.get('message', '')}")
        if ours is None:
            rolled_back = next((e["message"] for e in news if _ends_ours(e.get("message", ""), deployment_id)), None)
            if seen_ours or rolled_back:
                why = f" ({rolled_back})" if rolled_back else ""
                return Rollout(False, f"ECS replaced the deployment (the circuit breaker rolled it back){why}.")
            if poller.clock() > stale_until:
                return Rollout(
                    False,
                    f"ECS did not show the deployment {deployment_id or task_definition} within "
                    f"{int(min(STALE_READ_SECONDS, timeout))}s of the update",
                )
            poller.log(
                f"DescribeServices does not show the deployment {deployment_id or task_definition} yet; waiting."
            )
            poller.wait()
            continue
        seen_ours = True
        state = ours.get("rolloutState", "")
        if state == "COMPLETED":
            return Rollout(True, ours.get("rolloutStateReason", "completed"))
        if state == "FAILED":
            return Rollout(False, ours.get("rolloutStateReason") or "the deployment failed")
        if poller.clock() > deadline:
            return Rollout(False, f"the rollout did not complete within {int(timeout)}s")
        poller.log(
            f"Rollout {state.lower() or 'pending'}: {ours.get('runningCount', 0)} of "
            f"{ours.get('desiredCount', 0)} tasks running."
        )
        poller.wait()


def _ends_ours(message: str, deployment_id: str) -> bool:
    """An ECS service event saying our deployment failed, or that the circuit breaker is rolling
    the service back (which, after our update, can only be away from ours)."""
    if "rolling back to deployment" in message:
        return True
    return bool(deployment_id) and deployment_id in message and "fail" in message


ALARM_TYPES = ["MetricAlarm", "CompositeAlarm"]
NAMES_PER_CALL = 100  # DescribeAlarms takes at most 100 AlarmNames


@dataclass(frozen=True)
class Alarm:
    name: str
    state: str  # OK, ALARM or INSUFFICIENT_DATA
    reason: str
    composite: bool

    def describe(self) -> str:
        return f"{self.name}{' (composite)' if self.composite else ''}: {self.state}"


@dataclass(frozen=True)
class Alarms:
    """The named alarms as CloudWatch reports them, in the order named; `missing`: names it does not know."""

    found: list[Alarm]
    missing: list[str]

    def in_state(self, state: str) -> list[Alarm]:
        return [a for a in self.found if a.state == state]

    def describe(self) -> str:
        return "; ".join(a.describe() for a in self.found) or "none"


def read_alarms(cloudwatch, poller: Poller, names: list[str]) -> Alarms:
    """Metric and composite alarms by name, 100 names a call, every page of each answer.

    Without AlarmTypes DescribeAlarms returns metric alarms only, and a name it does not know is
    simply absent from the answer (no error): both would let an alarm go unwatched, so both
    types are asked for and the absent names are returned as `missing`.
    """
    by_name: dict[str, Alarm] = {}
    names = list(dict.fromkeys(names))
    for start in range(0, len(names), NAMES_PER_CALL):
        request = {"AlarmNames": names[start : start + NAMES_PER_CALL], "AlarmTypes": ALARM_TYPES, "MaxRecords": 100}
        while True:
            page = poller.call(cloudwatch.describe_alarms, **request)
            for kind, composite in (("MetricAlarms", False), ("CompositeAlarms", True)):
                for a in page.get(kind, []):
                    by_name[a["AlarmName"]] = Alarm(
                        a["AlarmName"], a.get("StateValue", ""), a.get("StateReason", ""), composite
                    )
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
    return Alarms([by_name[n] for n in names if n in by_name], [n for n in names if n not in by_name])


def missing_alarms_problem(missing: list[str]) -> str:
    return (
        f"CloudWatch has no alarm named {', '.join(missing)}: the bake cannot watch "
        f"{'it' if len(missing) == 1 else 'them'}. Fix the environment's alarm names (or create the alarms)"
    )


def smoke_test(checks: list[dict], timeout: float = 10) -> list[str]:
    """GET each URL; a check fails on another status or missing body text. Returns the failures."""
    failures = []
    for check in checks:
        url, expected = check["url"], check.get("expected_status", 200)
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout) as response:
                status, body = response.status, response.read(65536).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read(65536).decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        if status != expected:
            failures.append(f"{url}: status {status}, expected {expected}")
        elif check.get("body_contains") and check["body_contains"] not in body:
            failures.append(f"{url}: body does not contain {check['body_contains']!r}")
    return failures


def bake(
    cloudwatch,
    poller: Poller,
    alarm_names: list[str],
    smoke_checks: list[dict],
    seconds: float,
    check: prometheus.Check | None = None,
    insufficient_data_passes: bool = False,
) -> str | None:
    """Run the smoke tests, then watch alarms (and the Prometheus check) for `seconds`; return the
    first problem, or None.

    An alarm in ALARM ends the bake at once; so does a named alarm that CloudWatch no longer
    knows. An alarm in INSUFFICIENT_DATA is only a pass at the end of the bake when the
    environment says so (`insufficient_data_passes`): by default an alarm without data has not
    shown the deploy is good. The watched alarms and their states are logged when they change.

    The Prometheus check is evaluated at every poll: a breach ends the bake at once, and so does an
    expression Prometheus refuses. When Prometheus cannot answer (unreachable, no data), the bake
    keeps polling, but the last evaluation, at the end of the window, must be a pass: a deploy that
    could not be verified is not called good.
    """
    failures = smoke_test(smoke_checks)
    if failures:
        return "smoke test failed: " + "; ".join(failures)
    if smoke_checks:
        poller.log(f"Smoke tests passed ({len(smoke_checks)} checks).")
    deadline = poller.clock() + seconds
    logged = None
    while True:
        alarms = read_alarms(cloudwatch, poller, alarm_names) if alarm_names else Alarms([], [])
        if alarm_names and alarms.describe() != logged:
            logged = alarms.describe()
            poller.log(f"Alarms watched: {logged}.")
        if alarms.missing:
            return (
                f"CloudWatch no longer has the alarm {', '.join(alarms.missing)} (deleted during the bake?); "
                "the deploy could not be verified"
            )
        firing = alarms.in_state("ALARM")
        if firing:
            return "alarm in ALARM during bake: " + ", ".join(f"{a.name} ({a.reason})" for a in firing)
        unverified = None
        if check is not None:
            problem, unverified = verify(check, poller)
            if problem:
                return problem
        if poller.clock() >= deadline:
            no_data = ", ".join(a.name for a in alarms.in_state("INSUFFICIENT_DATA"))
            if no_data and not insufficient_data_passes:
                return (
                    f"alarm in INSUFFICIENT_DATA at the end of the bake: {no_data}; the deploy could not be "
                    "verified (the environment counts INSUFFICIENT_DATA as a failure)"
                )
            if no_data:
                poller.log(f"{no_data}: INSUFFICIENT_DATA, counted as a pass (the environment's policy).")
            if unverified:
                return f"Prometheus verification failed: {unverified}; the deploy could not be verified"
            return None
        poller.wait()


def verify(check: prometheus.Check, poller: Poller) -> tuple[str | None, str | None]:
    """Evaluate the check once: (a problem that ends the bake, or why it could not be verified now)."""
    try:
        reading = prometheus.evaluate(check)
    except prometheus.QueryError as exc:
        return f"Prometheus verification failed: the query {check.expression!r} failed: {exc}", None
    except prometheus.Unverifiable as exc:
        poller.log(f"Prometheus: {exc}.")
        return None, str(exc)
    more = f" (worst of {reading.series} series)" if reading.series > 1 else ""
    if reading.breached:
        return (
            f"Prometheus verification failed: {check.expression} = {reading.sample.describe()}{more}; "
            f"the check {check.rule}"
        ), None
    poller.log(f"Prometheus: {check.expression} = {reading.sample.describe()}{more}; {check.rule}: ok.")
    return None, None


# --- Load balancer: capacity, the test listener, weights -----------------------------------------
def scale_service(ecs, poller: Poller, cluster: str, service: str, desired_count: int) -> None:
    poller.call(ecs.update_service, cluster=cluster, service=service, desiredCount=desired_count)


def healthy_targets(elbv2, poller: Poller, target_group_arn: str) -> int:
    found = poller.call(elbv2.describe_target_health, TargetGroupArn=target_group_arn)
    return sum(
        1 for t in found.get("TargetHealthDescriptions", []) if t.get("TargetHealth", {}).get("State") == "healthy"
    )


def wait_for_capacity(
    ecs, elbv2, poller: Poller, cluster: str, service: str, target_group_arn: str, timeout: float
) -> str | None:
    """Wait until the service runs its desired count (one deployment, all tasks running) and as
    many targets are healthy in its target group; return why not by the deadline, or None.

    A rollout COMPLETED says nothing about traffic: a service at 0 tasks completes with 0 tasks,
    and a forward to a target group with no healthy targets answers 503.
    """
    deadline = poller.clock() + timeout
    while True:
        desc = describe_service(ecs, poller, cluster, service).description
        desired, deployments = desc.get("desiredCount", 0), desc.get("deployments", [])
        running = sum(d.get("runningCount", 0) for d in deployments)
        healthy = healthy_targets(elbv2, poller, target_group_arn)
        if desired > 0 and len(deployments) == 1 and running == desired and healthy >= desired:
            poller.log(f"{service}: {running} of {desired} tasks running, {healthy} healthy targets.")
            return None
        if poller.clock() > deadline:
            return (
                f"{service} did not reach {desired} running tasks with healthy targets within {int(timeout)}s "
                f"({running} running, {healthy} healthy)"
            )
        poller.log(f"Waiting for {service}: {running} of {desired} tasks running, {healthy} healthy targets.")
        poller.wait()


def forward_action(actions: list[dict]) -> dict | None:
    """The forward among a listener's or rule's actions (an authenticate action may come first)."""
    ordered = sorted(enumerate(actions), key=lambda pair: (pair[1].get("Order", 0), pair[0]))
    return next((action for _, action in ordered if action.get("Type") == "forward"), None)


def target_groups(action: dict) -> list[dict]:
    """A forward's target groups with weights; a plain TargetGroupArn is all of the traffic."""
    groups = action.get("ForwardConfig", {}).get("TargetGroups", [])
    if not groups and action.get("TargetGroupArn"):
        groups = [{"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}]
    return groups


def writable(action: dict) -> dict:
    """An action as read, made fit to send back: Describe never returns an OIDC client secret, so
    the action says to keep the existing one."""
    action = dict(action)
    if action.get("Type") == "authenticate-oidc" and "ClientSecret" not in action.get("AuthenticateOidcConfig", {}):
        action["AuthenticateOidcConfig"] = {**action["AuthenticateOidcConfig"], "UseExistingClientSecret": True}
    return action


def _reweigh(action: dict, weights: dict[str, int]) -> dict:
    """The forward with these weights for the named target groups; other groups and the
    stickiness config are kept as they are."""
    config = dict(action.get("ForwardConfig", {}))
    groups = [
        {"TargetGroupArn": g["TargetGroupArn"], "Weight": weights.get(g["TargetGroupArn"], g.get("Weight", 1))}
        for g in target_groups(action)
    ]
    present = {g["TargetGroupArn"] for g in groups}
    groups += [{"TargetGroupArn": arn, "Weight": w} for arn, w in weights.items() if arn not in present]
    config["TargetGroups"] = groups
    rest = {k: v for k, v in action.items() if k not in ("TargetGroupArn", "ForwardConfig")}
    return {**rest, "ForwardConfig": config}


def _shifted(actions: list[dict], weights: dict[str, int]) -> list[dict] | None:
    """The actions with the forward reweighed, or None when the forward names none of the groups."""
    forward = forward_action(actions)
    if forward is None or not {g["TargetGroupArn"] for g in target_groups(forward)} & set(weights):
        return None
    return [_reweigh(a, weights) if a is forward else writable(a) for a in actions]


def set_listener_weights(elbv2, poller: Poller, listener_arn: str, weights: dict[str, int]) -> None:
    """Give the target groups these weights in the listener's default forward and in every rule of
    the listener that forwards to one of them.

    ModifyListener and ModifyRule replace the whole action list, so each list is read and written
    back as it was (order, authenticate actions, stickiness), only the forward's weights changed.
    """
    listener = poller.call(elbv2.describe_listeners, ListenerArns=[listener_arn])["Listeners"][0]
    actions = _shifted(listener.get("DefaultActions", []), weights)
    if actions is None:
        raise StepFailed(f"The listener {listener_arn} has no forward to the blue or green target group.")
    poller.call(elbv2.modify_listener, ListenerArn=listener_arn, DefaultActions=actions)
    for rule in listener_rules(elbv2, poller, listener_arn):
        actions = None if rule.get("IsDefault") else _shifted(rule.get("Actions", []), weights)
        if actions is not None:
            poller.call(elbv2.modify_rule, RuleArn=rule["RuleArn"], Actions=actions)
            poller.log(f"Listener rule {rule.get('Priority')} shifted with the default action.")


def listener_rules(elbv2, poller: Poller, listener_arn: str) -> list[dict]:
    """Every rule of the listener: DescribeRules answers in pages (NextMarker)."""
    rules, request = [], {"ListenerArn": listener_arn}
    while True:
        page = poller.call(elbv2.describe_rules, **request)
        rules += page.get("Rules", [])
        if not page.get("NextMarker"):
            return rules
        request["Marker"] = page["NextMarker"]


def point_listener(elbv2, poller: Poller, listener_arn: str, target_group_arn: str) -> None:
    """Forward all of the (test) listener's traffic to one target group, changing nothing else."""
    listener = poller.call(elbv2.describe_listeners, ListenerArns=[listener_arn])["Listeners"][0]
    actions = listener.get("DefaultActions", [])
    forward = forward_action(actions)
    if forward is None:
        raise StepFailed(f"The test listener {listener_arn} has no forward action to point at the idle colour.")
    pointed = {k: v for k, v in forward.items() if k not in ("TargetGroupArn", "ForwardConfig")}
    if "ForwardConfig" in forward:
        config = {**forward["ForwardConfig"], "TargetGroups": [{"TargetGroupArn": target_group_arn, "Weight": 1}]}
        pointed["ForwardConfig"] = config
    else:
        pointed["TargetGroupArn"] = target_group_arn
    actions = [pointed if a is forward else writable(a) for a in actions]
    poller.call(elbv2.modify_listener, ListenerArn=listener_arn, DefaultActions=actions)
