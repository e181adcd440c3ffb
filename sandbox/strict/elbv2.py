"""Elastic Load Balancing (v2) rules, and a model of an Application Load Balancer answering.

moto stores listeners, rules and target groups but nothing answers through them, no ECS task ever
registers in a target group, and it accepts actions AWS refuses. With these rules:

- DescribeTargetHealth of a target group an ECS service is attached to lists one healthy target
  per running task of that service (ECS registers a service's tasks in its target group as they
  start and deregisters them as they stop: ECS Developer Guide, "Use load balancing to distribute
  Amazon ECS service traffic"). A service at 0 tasks leaves its target group empty.
- Listener and rule actions are checked as the ELBv2 API reference says (CreateListener,
  ModifyListener, CreateRule, ModifyRule; the `Action` and `AuthenticateOidcActionConfig` types):
  every forward target group must exist (TargetGroupNotFound, which moto skips on ModifyListener);
  authenticate actions only on HTTPS listeners; several actions each need a distinct Order and the
  last must be forward, redirect or fixed-response (InvalidLoadBalancerAction); an OIDC action
  needs its ClientSecret, except on a modify that sets UseExistingClientSecret. The secret is never
  returned by a Describe call, so a caller that reads an action and writes it back must say
  UseExistingClientSecret.
- A listener answers requests (the model, not an AWS API): `GET /moto-api/sandbox/alb/<load
  balancer name>/<listener port>/<path>` goes through the listener's rules (path-pattern
  conditions only; any other condition never matches here) and its actions in order. Authenticate
  actions let the request through (the model's clients are signed in); a forward picks a target
  group by weight (deterministic, evenly spread), then one of its registered targets; a target
  group with no registered targets answers 503 ("Troubleshoot your Application Load Balancers":
  HTTP 503, the target groups for the load balancer have no registered targets). A target answers
  200 with JSON naming its target group, ECS service and task definition, so a smoke test can tell
  which colour and revision answered. Each answer is written to the load balancer's access log,
  read at `GET /moto-api/sandbox/alb-access-log/<load balancer name>` (like ALB access logs, which
  name the target group and target of each request).
"""

from __future__ import annotations

import fnmatch
import json
import math
import zlib
from dataclasses import dataclass

from moto.core import DEFAULT_ACCOUNT_ID
from moto.elbv2 import models as elbv2_models
from moto.elbv2.exceptions import ELBClientError, TargetGroupNotFoundError
from moto.moto_api._internal import urls as moto_api_urls

from sandbox import ecs_rollouts

AUTHENTICATE = ("authenticate-oidc", "authenticate-cognito")
FINAL = ("forward", "redirect", "fixed-response")
GOLDEN = (math.sqrt(5) - 1) / 2  # spreads the weighted picks evenly over consecutive requests


class InvalidLoadBalancerAction(ELBClientError):
    def __init__(self, message: str):
        super().__init__("InvalidLoadBalancerAction", message)


class ValidationError(ELBClientError):
    def __init__(self, message: str):
        super().__init__("ValidationError", message)


# --- Targets: ECS tasks registered in their service's target group --------------------------------
@dataclass
class Target:
    id: str
    port: int
    service: str = ""
    task_definition: str = ""


def task_targets(backend, target_group) -> list[Target]:
    """One target per running task of each ECS service attached to the target group."""
    from moto.ecs.models import ecs_backends

    ecs = ecs_backends[backend.account_id].get(backend.region_name)
    targets: list[Target] = []
    for service in list(ecs.services.values()) if ecs else []:
        attached = [lb for lb in service.load_balancers if lb.get("targetGroupArn") == target_group.arn]
        if service.status != "ACTIVE" or not attached:
            continue
        ecs_rollouts.advance(ecs, service)
        port = int(attached[0].get("containerPort") or target_group.port or 80)
        for deployment in service.deployments:
            subnet = zlib.crc32(deployment["id"].encode()) % 200 + 20
            for index in range(int(deployment.get("runningCount") or 0)):
                targets.append(Target(f"10.0.{subnet}.{index + 10}", port, service.name, deployment["taskDefinition"]))
    return targets


def registered_targets(backend, target_group) -> list[Target]:
    tasks = task_targets(backend, target_group)
    others = [Target(t["Id"], int(t.get("Port") or target_group.port or 80)) for t in target_group.targets.values()]
    return tasks + others


# --- Actions as the API reference says ------------------------------------------------------------
def check_actions(backend, protocol: str, actions: list[dict], *, existing: list | None = None) -> None:
    """Refuse what AWS refuses; `existing` (the actions being replaced) is given on a modify."""
    for index, action in enumerate(actions, start=1):
        kind = action.get("Type")
        if kind == "forward":
            arns = [action["TargetGroupArn"]] if action.get("TargetGroupArn") else []
            arns += [g["TargetGroupArn"] for g in action.get("ForwardConfig", {}).get("TargetGroups", [])]
            if any(arn not in backend.target_groups for arn in arns):
                raise TargetGroupNotFoundError()
        if kind in AUTHENTICATE and protocol != "HTTPS":
            raise InvalidLoadBalancerAction(
                f"Action {index}: authenticate actions are supported only on HTTPS listeners."
            )
        if kind == "authenticate-oidc":
            config = action.get("AuthenticateOidcConfig", {})
            if config.get("UseExistingClientSecret") and existing is None:
                raise ValidationError("UseExistingClientSecret can be true only when modifying a rule.")
            if not config.get("ClientSecret") and not config.get("UseExistingClientSecret"):
                raise ValidationError(
                    "A client secret must be specified in the authenticate-oidc action "
                    "(or UseExistingClientSecret set to true when modifying)."
                )
    if len(actions) > 1:
        orders = [action.get("Order") for action in actions]
        if None in orders or len(set(orders)) != len(orders):
            raise ValidationError("Each action must have a distinct Order when a rule has several actions.")
    if actions:
        last = sorted(actions, key=lambda a: a.get("Order") or 0)[-1]
        if last.get("Type") not in FINAL:
            raise InvalidLoadBalancerAction("The last action must be a forward, redirect or fixed-response action.")


def keep_secrets(actions: list, existing: list | None) -> None:
    """Move each OIDC client secret out of what Describe returns; an action that says
    UseExistingClientSecret keeps the secret of the action it replaces."""
    previous = next((getattr(a, "_client_secret", None) for a in existing or [] if a.type == "authenticate-oidc"), None)
    for action in actions:
        config = action.data.get("AuthenticateOidcConfig") if action.type == "authenticate-oidc" else None
        if config is None:
            continue
        secret = config.pop("ClientSecret", None)
        config.pop("UseExistingClientSecret", None)
        action._client_secret = secret or getattr(action, "_client_secret", None) or previous


def _find_rule(backend, rule_arn: str):
    for balancer in backend.load_balancers.values():
        for listener in balancer.listeners.values():
            for rule in listener.rules.values():
                if rule.arn == rule_arn:
                    return listener, rule
    return None, None


# --- The listener answering ---------------------------------------------------------------------
def _counter(backend, key: str) -> int:
    counters = backend.__dict__.setdefault("_sandbox_counters", {})
    counters[key] = counters.get(key, 0) + 1
    return counters[key] - 1


def _pick_group(backend, key: str, action: dict) -> str | None:
    groups = action.get("ForwardConfig", {}).get("TargetGroups") or [
        {"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}
    ]
    total = sum(int(g.get("Weight", 1)) for g in groups)
    if total <= 0:
        return None
    position = (_counter(backend, key) * GOLDEN) % 1 * total
    for group in groups:
        position -= int(group.get("Weight", 1))
        if position < 0:
            return group["TargetGroupArn"]
    return groups[-1]["TargetGroupArn"]


def _matches(rule, path: str) -> bool:
    if not rule.conditions:
        return False
    for condition in rule.conditions:
        if condition.get("Field") != "path-pattern":
            return False
        values = condition.get("PathPatternConfig", {}).get("Values") or condition.get("Values") or []
        if not any(fnmatch.fnmatchcase(path, value) for value in values):
            return False
    return True


def answer(backend, balancer, listener, path: str) -> tuple[int, dict, dict]:
    """(status, headers, body) of one request to the listener, and its access-log entry."""
    rules = [r for r in listener.rules.values() if not r.is_default]
    rule = next(
        (r for r in sorted(rules, key=lambda r: int(r.priority)) if _matches(r, path)),
        listener._default_rule[0],
    )
    entry = {"port": int(listener.port), "path": path, "rule": "default" if rule.is_default else str(rule.priority)}
    for action in sorted((a.data for a in rule.actions), key=lambda a: a.get("Order") or 0):
        kind = action.get("Type")
        if kind in AUTHENTICATE:
            continue
        if kind == "fixed-response":
            config = action.get("FixedResponseConfig", {})
            return int(config.get("StatusCode", 200)), {}, {**entry, "status": int(config.get("StatusCode", 200))}
        if kind == "redirect":
            config = action.get("RedirectConfig", {})
            status = 301 if config.get("StatusCode") == "HTTP_301" else 302
            return status, {"Location": config.get("Host", "#{host}")}, {**entry, "status": status}
        if kind == "forward":
            arn = _pick_group(backend, rule.arn, action)
            group = backend.target_groups.get(arn) if arn else None
            targets = registered_targets(backend, group) if group else []
            if not targets:
                return 503, {}, {**entry, "status": 503, "target_group": group.name if group else ""}
            target = targets[_counter(backend, arn) % len(targets)]
            return (
                200,
                {"Content-Type": "application/json"},
                {
                    **entry,
                    "status": 200,
                    "target_group": group.name,
                    "target": f"{target.id}:{target.port}",
                    "service": target.service,
                    "task_definition": target.task_definition,
                },
            )
    return 503, {}, {**entry, "status": 503}


def _balancers(name: str):
    for backend in elbv2_models.elbv2_backends[DEFAULT_ACCOUNT_ID].values():
        for balancer in backend.load_balancers.values():
            if balancer.name == name:
                yield backend, balancer


def serve_listener(request, full_url: str, headers) -> tuple[int, dict, str]:
    rest = request.path.split("/moto-api/sandbox/alb/", 1)[1]
    name, _, rest = rest.partition("/")
    port, _, path = rest.partition("/")
    for backend, balancer in _balancers(name):
        listener = next((lis for lis in balancer.listeners.values() if str(lis.port) == port), None)
        if listener is None:
            break
        status, extra, entry = answer(backend, balancer, listener, "/" + path)
        backend.__dict__.setdefault("_sandbox_access_log", {}).setdefault(name, []).append(entry)
        if status == 503:
            return (
                503,
                {"Content-Type": "text/html"},
                "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
            )
        return status, extra, json.dumps(entry)
    return 404, {}, json.dumps({"error": f"no load balancer {name} with a listener on port {port}"})


def serve_access_log(request, full_url: str, headers) -> tuple[int, dict, str]:
    name = request.path.rstrip("/").rsplit("/", 1)[1]
    log = [e for backend, _ in _balancers(name) for e in backend.__dict__.get("_sandbox_access_log", {}).get(name, [])]
    return 200, {"Content-Type": "application/json"}, json.dumps(log)


def install() -> None:
    backend_class = elbv2_models.ELBv2Backend
    original = {
        name: getattr(backend_class, name)
        for name in ("create_listener", "modify_listener", "create_rule", "modify_rule", "describe_target_health")
    }

    def create_listener(self, load_balancer_arn, protocol, port, ssl_policy, certificate, actions, *args, **kwargs):
        check_actions(self, (protocol or "").upper(), actions or [])
        listener = original["create_listener"](
            self, load_balancer_arn, protocol, port, ssl_policy, certificate, actions, *args, **kwargs
        )
        keep_secrets(listener.default_actions, None)
        return listener

    def modify_listener(self, arn, port=None, protocol=None, ssl_policy=None, certificates=None, actions=None):
        listener = self.describe_listeners(None, [arn])[0]
        existing = list(listener.default_actions)
        if actions:
            check_actions(self, (protocol or listener.protocol).upper(), actions, existing=existing)
        listener = original["modify_listener"](self, arn, port, protocol, ssl_policy, certificates, actions)
        if actions:
            keep_secrets(listener.default_actions, existing)
        return listener

    def create_rule(self, listener_arn, conditions, priority, actions, *args, **kwargs):
        listener = self.describe_listeners(None, [listener_arn])[0]
        check_actions(self, listener.protocol, actions or [])
        rule = original["create_rule"](self, listener_arn, conditions, priority, actions, *args, **kwargs)
        keep_secrets(rule.actions, None)
        return rule

    def modify_rule(self, rule_arn, conditions, actions):
        listener, rule = _find_rule(self, rule_arn)
        existing = list(rule.actions) if rule else []
        if actions and listener is not None:
            check_actions(self, listener.protocol, actions, existing=existing)
        rule = original["modify_rule"](self, rule_arn, conditions, actions)
        if actions:
            keep_secrets(rule.actions, existing)
        return rule

    def describe_target_health(self, target_group_arn, targets):
        group = self.target_groups.get(target_group_arn)
        if group is None:
            raise TargetGroupNotFoundError()
        tasks = {t.id: t for t in task_targets(self, group)}
        wanted = targets or [{"Id": t.id} for t in tasks.values()] + list(group.targets.values())
        found = []
        for target in wanted:
            task = tasks.get(target["Id"])
            if task is not None:
                found.append(elbv2_models.FakeHealthStatus(task.id, task.port, group.health_check_port, "healthy"))
            else:
                found += original["describe_target_health"](self, target_group_arn, [target])
        return found

    backend_class.create_listener = create_listener
    backend_class.modify_listener = modify_listener
    backend_class.create_rule = create_rule
    backend_class.modify_rule = modify_rule
    backend_class.describe_target_health = describe_target_health
    moto_api_urls.url_paths["{0}/moto-api/sandbox/alb/(?P<rest>.+)$"] = serve_listener
    moto_api_urls.url_paths["{0}/moto-api/sandbox/alb-access-log/(?P<name>[^/]+)$"] = serve_access_log
