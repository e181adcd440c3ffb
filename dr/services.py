"""Requesting, approving and resuming failovers, drills and failbacks: the guarded path.

request(): DR permission -> typed environment name -> reason -> cooldown and state -> atomic(run
awaiting approval, operation record, audit). decide(): a different DR operator or admin, within the
plan's approval window; the approval time starts the RTO clock. Every refusal changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from deployments.models import Approval, Decision
from deployments.services import expire_if_due
from dr.guard import guarded_launch
from dr.models import RUN_KINDS, DROperation, DRPlan, Operation, Site
from opsconsole.access.models import Action
from opsconsole.access.permissions import allowed
from opsconsole.audit.log import record
from opsconsole.runs.context import append_event
from opsconsole.runs.dispatch import QueueUnavailable, check_queue, dispatch_safely
from opsconsole.runs.models import ACTIVE, Level, Run, Status
from opsconsole.runs.services import LaunchRefused, NotPermitted, launch, principal_name

DR_KINDS = tuple(RUN_KINDS.values())
RESUMABLE = (Status.FAILED, Status.ERRORED, Status.CANCELED)


class Refused(LaunchRefused):
    def __init__(self, message: str, code: str = "refused"):
        super().__init__(message)
        self.code = code


def _user(principal):
    return principal if getattr(principal, "is_authenticated", False) else None


def active_operation(plan: DRPlan) -> DROperation | None:
    return plan.operations.filter(run__status__in=ACTIVE).select_related("run").first()


def cooldown_until(plan: DRPlan, operation: str):
    """When the last failover (or failback) that was approved stops blocking another one."""
    last = (
        plan.operations.filter(operation=operation, approved_at__isnull=False, resumes__isnull=True)
        .order_by("-approved_at")
        .first()
    )
    if last is None or not plan.cooldown_minutes:
        return None
    until = last.approved_at + timedelta(minutes=plan.cooldown_minutes)
    return until if until > timezone.now() else None


def request(plan: DRPlan, principal, operation: str, *, reason: str, typed_name: str) -> Run:
    """Ask for a failover, drill or failback; it waits for a second person's approval."""
    environment = plan.environment
    if operation not in RUN_KINDS:
        raise Refused("Choose failover, drill or failback.", "invalid")
    if _user(principal) is None or not allowed(principal, Action.DR, environment):
        raise NotPermitted(f"Only DR operators may request a {operation} of {environment}.")
    if typed_name.strip() != environment.name:
        raise Refused(f"Type the environment's name, {environment.name}, exactly to confirm.", "name_mismatch")
    reason = reason.strip()
    if not reason:
        raise Refused("Say why: the reason is kept in the audit log.", "reason_required")
    busy = active_operation(plan)
    if busy is not None:
        raise Refused(
            f"Run #{busy.run_id} ({busy.get_operation_display().lower()}) is still "
            f"{busy.run.get_status_display().lower()}.",
            "busy",
        )
    if operation == Operation.FAILOVER and plan.active_site == Site.DR:
        raise Refused(f"{environment} already runs in {plan.dr_region}; fail back first.", "already_failed_over")
    if operation == Operation.FAILBACK and plan.active_site == Site.PRIMARY:
        raise Refused(f"{environment} already runs in {plan.primary_region}.", "not_failed_over")
    if operation == Operation.DRILL and not plan.drill_record_name:
        raise Refused("The DR plan has no drill DNS record; a drill never switches the live one.", "no_drill_record")
    if operation in (Operation.FAILOVER, Operation.FAILBACK):
        until = cooldown_until(plan, operation)
        if until is not None:
            raise Refused(
                f"A {operation} of {environment} was approved recently; the cooldown lasts until {until:%H:%M} UTC.",
                "cooldown",
            )
    return _launch(plan, principal, operation, reason, resumes=None)


def _launch(plan: DRPlan, principal, operation: str, reason: str, resumes: DROperation | None) -> Run:
    environment = plan.environment
    live = environment.live_release
    params = {
        **plan.definition(),
        "operation": operation,
        "reason": reason,
        "release": {"id": live.pk, "tag": live.tag, "image": live.image} if live else None,
        "resumes_run": resumes.run_id if resumes else None,
    }
    with transaction.atomic(), guarded_launch():
        run = launch(
            RUN_KINDS[operation],
            principal=principal,
            environment=environment,
            params=params,
            awaiting_approval=resumes is None,
            check_permission=False,
        )
        DROperation.objects.create(
            plan=plan,
            run=run,
            operation=operation,
            reason=reason[:500],
            resumes=resumes,
            progress=dict(resumes.progress) if resumes else {},
            approved_at=resumes.approved_at if resumes else None,
            snapshot_identifier=resumes.snapshot_identifier if resumes else "",
            snapshot_at=resumes.snapshot_at if resumes else None,
            dns_switched_at=resumes.dns_switched_at if resumes else None,
        )
    return run


def decide(run: Run, principal, decision: str, comment: str = "") -> Run:
    """Approve or reject a DR run: by another DR operator or an admin, within the window."""
    environment = run.environment
    if run.kind not in DR_KINDS:
        raise Refused(f"Run #{run.pk} is not a DR run.", "invalid")
    if run.status != Status.AWAITING_APPROVAL:
        raise Refused(
            f"Run #{run.pk} is not awaiting approval (it is {run.get_status_display().lower()}).", "not_awaiting"
        )
    if _user(principal) is None or not allowed(principal, Action.DR, environment):
        raise NotPermitted(f"Only another DR operator or an admin may approve this in {environment}.")
    if run.requested_by_id == principal.pk:
        raise Refused("You cannot approve your own request; a second DR operator or admin must.", "self_approval")
    if decision not in Decision.values:
        raise Refused("decision must be approve or reject.", "invalid")
    if expire_if_due(run):
        raise Refused(f"The approval window for run #{run.pk} has passed; it was canceled.", "expired")
    comment = comment.strip()[:500]
    if decision == Decision.REJECT and not comment:
        raise Refused("Say why you reject it in the comment.", "comment_required")
    with transaction.atomic():
        try:
            Approval.objects.create(run=run, user=principal, decision=decision, comment=comment)
        except IntegrityError:
            raise Refused("You have already voted on this run.", "already_voted") from None
        operation = run.kind.split(".", 1)[1]
        record(
            f"dr.{operation}.{'approved' if decision == Decision.APPROVE else 'rejected'}",
            actor=principal,
            target=f"run:{run.pk}",
            environment=environment.name,
            details={"run": run.pk, "comment": comment},
        )
        append_event(
            run, f"{decision.capitalize()}d by {principal.get_username()}" + (f": {comment}" if comment else ".")
        )
        if decision == Decision.REJECT:
            run.transition(Status.CANCELED, error=f"Rejected by {principal.get_username()}: {comment}")
            return run
        try:
            check_queue()
        except QueueUnavailable as exc:
            raise Refused(str(exc), "queue_unavailable") from None
        now = timezone.now()
        DROperation.objects.filter(run=run).update(approved_at=now)
        run.transition(Status.QUEUED)
        append_event(run, f"Approved by a second person at {now:%H:%M:%S} UTC; the RTO clock starts now. Queued.")
        transaction.on_commit(lambda: dispatch_safely(run.pk))
    return run


def resume(operation: DROperation, principal) -> Run:
    """Run a failed or errored operation again; steps it finished are skipped. The original
    approval stands (the RTO clock keeps running from it), so no second vote is asked for."""
    plan = operation.plan
    if _user(principal) is None or not allowed(principal, Action.DR, plan.environment):
        raise NotPermitted(f"Only DR operators may resume a {operation.operation} of {plan.environment}.")
    if operation.operation == Operation.DRILL:
        raise Refused("A drill tears down what it created; start a new drill instead.", "drill")
    if operation.run.status not in RESUMABLE:
        raise Refused("Only a failed, errored or canceled DR run can be resumed.", "not_failed")
    if operation.approved_at is None:
        raise Refused("This run was never approved; request it again.", "not_approved")
    if operation.resumed_by.exists():
        raise Refused("This run was already resumed; resume the latest attempt.", "already_resumed")
    busy = active_operation(plan)
    if busy is not None:
        raise Refused(f"Run #{busy.run_id} is still {busy.run.get_status_display().lower()}.", "busy")
    try:
        check_queue()
    except QueueUnavailable as exc:
        raise Refused(str(exc), "queue_unavailable") from None
    with transaction.atomic():
        run = _launch(plan, principal, operation.operation, operation.reason, resumes=operation)
        record(
            f"dr.{operation.operation}.resumed",
            actor=_user(principal),
            actor_name=principal_name(principal),
            target=f"run:{run.pk}",
            environment=plan.environment.name,
            details={"run": run.pk, "resumes": operation.run_id},
        )
        append_event(run, f"Resumes run #{operation.run_id}; its finished steps are skipped.", Level.INFO)
    return run


def expire_approvals() -> int:
    return sum(expire_if_due(run) for run in Run.objects.filter(status=Status.AWAITING_APPROVAL, kind__in=DR_KINDS))
