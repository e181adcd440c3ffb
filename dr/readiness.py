"""Readiness checks of a DR plan: read-only AWS probes, each a checklist item with its time.

They run from the schedule (dr.tasks.check_readiness) and on demand from the DR page. They only
read, so they run in the request or the beat task rather than as a run. With Terraform (the plan
names a DR var file), one more item plans the DR stack: ready only when the plan has no changes
(dr.terraform.EXPECTED_CHANGES is empty: no change is expected of a standby stack). Only the
scheduled check plans: a plan can take minutes (it waits for a failover's apply on the same
stack) and needs the worker's secret variables, so a check from the page repeats the newest
scheduled Terraform item, with its own time.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from django.utils import timezone

from deployments.ecs import describe_service
from dr import aws as draws
from dr import terraform as drterraform
from dr.models import DRPlan, ReadinessCheck
from opsconsole import aws
from opsconsole.aws import Poller, StepFailed
from opsconsole.runs.models import ACTIVE


def _item(name: str, probe) -> dict:
    try:
        ok, detail = probe()
    except (ClientError, BotoCoreError, StepFailed) as exc:
        ok, detail = False, str(exc)[:300]
    return {"name": name, "ok": bool(ok), "detail": detail, "at": timezone.now().isoformat()}


def check(plan: DRPlan, requested_by: str = "schedule", *, plan_terraform: bool = True) -> ReadinessCheck:
    role = plan.environment.role_arn
    poller = Poller(log=lambda _: None, interval=0.5, max_transient_retries=3)
    rds = aws.client("rds", plan.dr_region, role)
    ecs = aws.client("ecs", plan.dr_region, role)
    route53 = aws.client("route53", plan.dr_region, role)

    def snapshot():
        found = draws.newest_snapshot(rds, poller, plan.db_source_identifier)
        if found is None:
            return False, f"No snapshot of {plan.db_source_identifier} in {plan.dr_region}."
        age = timezone.now() - found["SnapshotCreateTime"]
        minutes = int(age.total_seconds() // 60)
        return age <= plan.rpo, f"{found['DBSnapshotIdentifier']}, {minutes} min old (RPO {plan.rpo_minutes} min)."

    def service():
        found = describe_service(ecs, poller, plan.dr_ecs_cluster, plan.dr_ecs_service).description
        return True, f"{plan.dr_ecs_cluster}/{plan.dr_ecs_service}: desired {found.get('desiredCount', 0)}."

    def dns():
        found = draws.record_value(route53, poller, plan.hosted_zone_id, plan.record_name, plan.record_type)
        if found is None:
            return False, f"No {plan.record_type} record {plan.record_name} in zone {plan.hosted_zone_id}."
        return True, f"{plan.record_name} -> {found['value']}."

    def no_failover_active():
        busy = plan.operations.filter(run__status__in=ACTIVE).first()
        if busy is not None:
            return False, f"Run #{busy.run_id} ({busy.operation}) is active."
        if plan.active_site == "dr":
            return False, f"{plan.environment} runs in {plan.dr_region} (failed over); fail back first."
        return True, "No failover active; the primary region serves."

    items = [
        _item("Newest DR snapshot is younger than the RPO", snapshot),
        _item("DR ECS cluster and service exist", service),
        _item("Hosted zone and record are reachable", dns),
        _item("No failover is already active", no_failover_active),
    ]
    if plan.terraform_var_file:
        items.append(terraform_item(plan) if plan_terraform else last_terraform_item(plan))
    return ReadinessCheck.objects.create(
        plan=plan, items=items, ok=all(i["ok"] for i in items), requested_by_name=requested_by
    )


TERRAFORM_ITEM = "Terraform DR plan has no unexpected changes"


def terraform_item(plan: DRPlan) -> dict:
    """Plan the DR stack with the DR var file; ready when nothing would change."""
    item = {"name": TERRAFORM_ITEM, "ok": False, "detail": "", "at": timezone.now().isoformat()}
    missing = drterraform.missing_runner(plan)
    if missing:
        return item | {"detail": missing}
    try:
        changes = drterraform.DRStack(drterraform.stack_params(plan)).changes()
    except drterraform.DRTerraformError as exc:
        return item | {"detail": str(exc)[:500], "at": timezone.now().isoformat()}
    unexpected = drterraform.unexpected(changes)
    at = timezone.now().isoformat()
    if not unexpected:
        return item | {"ok": True, "detail": f"No changes: {plan.terraform_var_file} matches the DR stack.", "at": at}
    listed = ", ".join(f"{c['action']} {c['address']}" for c in unexpected[:10])
    more = f" and {len(unexpected) - 10} more" if len(unexpected) > 10 else ""
    detail = f"{len(unexpected)} unexpected change(s) with {plan.terraform_var_file}: {listed}{more}."
    return item | {"detail": detail, "changes": unexpected, "at": at}


def last_terraform_item(plan: DRPlan) -> dict:
    """The newest scheduled Terraform item of this plan, as it was then (its time says how old)."""
    scheduled = plan.checks.filter(requested_by_name="schedule").order_by("-pk").values_list("items", flat=True)
    for item in scheduled.first() or []:
        if item.get("name") == TERRAFORM_ITEM:
            return item
    return {
        "name": TERRAFORM_ITEM,
        "ok": False,
        "detail": "Not planned yet: the scheduled check plans the DR stack in the worker.",
        "at": timezone.now().isoformat(),
    }


def check_all() -> int:
    count = 0
    for plan in DRPlan.objects.select_related("environment"):
        check(plan)
        count += 1
    return count
