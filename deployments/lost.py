"""What a deploy or rollback whose worker died left on AWS.

The reaper ends such a run `errored (worker lost)` and frees the lock; the worker cannot say how
far it got, so this asks ECS (and, for blue/green, the load balancer) and the run's log says which
task definition the service runs: the new one, the kept one (the rollback target), or, while ECS is
still rolling out or back, both, which is said as such.
"""

from __future__ import annotations

from deployments import ecs
from deployments.models import Deployment
from opsconsole import aws
from opsconsole.environments.models import Color, Strategy
from opsconsole.runs.models import Run
from opsconsole.runs.registry import on_worker_lost


def _describe(run: Run, service_name: str) -> tuple[str, dict]:
    p = run.params
    client = aws.client("ecs", p["aws_region"], p.get("role_arn", ""))
    poller = ecs.Poller(log=lambda message: None, interval=1)
    service = ecs.describe_service(client, poller, p["ecs_cluster"], service_name)
    deployments = service.description.get("deployments", [])
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
    settled = len(deployments) == 1 and primary.get("rolloutState", "COMPLETED") == "COMPLETED"
    return service.task_definition, {"deployments": len(deployments), "settled": settled}


def _shares(run: Run) -> dict[str, float]:
    """Each target group's share of the traffic in percent, read from the listener's forward action
    (an authenticate action may come before it). Forward weights are relative (a single group
    weighted 1 takes it all), and an action may name one group with no ForwardConfig."""
    p = run.params
    elbv2 = aws.client("elbv2", p["aws_region"], p.get("role_arn", ""))
    listener = elbv2.describe_listeners(ListenerArns=[p["listener_arn"]])["Listeners"][0]
    action = ecs.forward_action(listener.get("DefaultActions", [])) or {}
    colours = {p["blue_target_group_arn"]: "blue", p["green_target_group_arn"]: "green"}
    weights = {
        colours.get(g["TargetGroupArn"], g["TargetGroupArn"]): g.get("Weight", 1) for g in ecs.target_groups(action)
    }
    total = sum(weights.values())
    return {name: round(100 * weight / total, 1) if total else 0 for name, weight in weights.items()}


@on_worker_lost("deployments.deploy", "deployments.rollback")
def service_left_behind(run: Run) -> tuple[str, dict]:
    p = run.params
    record = Deployment.objects.filter(run=run).first()
    new = record.task_definition_arn if record else ""
    kept = record.previous_task_definition_arn if record else ""
    if p.get("strategy") == Strategy.BLUE_GREEN:
        weights = dict(sorted(_shares(run).items()))  # blue, then green
        live = p["live_color"]
        idle = Color.GREEN if live == Color.BLUE else Color.BLUE
        live_share = weights.get(live, 0)
        on = "kept" if live_share and live_share == sum(weights.values()) else "split" if live_share else "new"
        new_text = f"the new task definition {new}" if new else "no new task definition yet"
        what = {
            "kept": f"all traffic still goes to {live}, the live colour; {idle} has {new_text} and may still run tasks",
            "new": f"all traffic goes to {idle}, with {new_text}; the deploy's checks did not finish: verify it",
            "split": "traffic is SPLIT: "
            + ", ".join(f"{colour} {weight:g}%" for colour, weight in weights.items())
            + f" ({idle} has {new_text}); shift it back or forward by hand",
        }[on]
        return f"The worker was lost mid-deploy: {what}.", {"on": on, "weights": weights, "new": new, "kept": kept}

    service = p["ecs_service"]
    running, state = _describe(run, service)
    facts = {"on": "", "service_task_definition": running, "new": new, "kept": kept, **state}
    if new and running == new:
        facts["on"] = "new"
        where = f"the new task definition {new} ({p['release']['tag']})"
    elif running == kept or (not new and not kept):
        facts["on"] = "kept"
        where = f"the kept task definition {running}" + ("" if new else "; this run had not changed it")
    else:
        facts["on"] = "other"
        where = f"{running}, which is neither this run's new ({new or 'none'}) nor kept ({kept}) task definition"
    if state["settled"]:
        tail = (
            "The deploy's checks did not finish: verify the service, then deploy again or roll back."
            if facts["on"] == "new"
            else "Nothing this run changed is live."
            if facts["on"] == "kept"
            else "Someone else changed the service: check it in the ECS console."
        )
        message = f"The worker was lost mid-deploy. ECS service {service} runs {where}. {tail}"
    else:
        message = (
            f"The worker was lost mid-deploy. ECS service {service} is IN BETWEEN: its primary deployment is "
            f"{where}, and {state['deployments']} deployments are running while ECS finishes the rollout (or its "
            f"circuit breaker rolls it back to {kept or 'the previous revision'}). Watch the service in the ECS "
            "console, then deploy again or roll back."
        )
    return message, facts
