"""Requesting, approving and resuming failovers, drills and failbacks: the guarded path.

request(): DR permission -> typed environment name -> reason -> the same request active, busy,
cooldown and state -> atomic(the plan's row lock, the same checks again, run awaiting approval,
operation record, audit): requests for one plan take turns, so six at once make one run and five
refusals naming it. decide(): a different DR operator or admin, within the
plan's approval window (the shared rules of opsconsole.runs.approvals.vote); the approval time starts
the RTO clock. Every refusal changes nothing.

A principal is a signed-in user or an API token. The person behind a token is its owner (the
admin who created it): a token needs the `dr` scope, its owner must still be an active DR operator
or admin there, and the owner counts as the requester for the two-person rule, so one person's two
tokens can never approve each other's requests.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from dr import terraform as drterraform
from dr.models import RUN_KINDS, DROperation, DRPlan, Operation, Site
from opsconsole.access.models import Action, ApiToken
from opsconsole.access.permissions import allowed
from opsconsole.audit.log import record
from opsconsole.audit.models import Outcome
from opsconsole.runs.approvals import expire_if_due, vote
from opsconsole.runs.context import append_event
from opsconsole.runs.dispatch import QueueUnavailable, check_queue
from opsconsole.runs.models import ACTIVE, EnvironmentLock, Level, Run, Status
from opsconsole.runs.registry import UnknownRunKind, get_kind, request_identity
from opsconsole.runs.services import (
    NotPermitted,
    Refused,
    launch,
    person_of,
    principal_name,
    refuse_duplicate,
    signed_in_user,
    through_service,
)

DR_KINDS = tuple(RUN_KINDS.values())


@request_identity(*DR_KINDS)
def operation_identity(params: dict) -> str:
    """Any two failovers (drills, failbacks) of one environment are the same request while one is
    active: there is one DR site to go to."""
    return params["operation"]


def may_dr(principal, environment) -> bool:
    """The principal holds `dr` here, and so does the person behind it (a token's owner)."""
    person = person_of(principal)
    return person is not None and allowed(principal, Action.DR, environment) and allowed(person, Action.DR, environment)


def active_operation(plan: DRPlan) -> DROperation | None:
    return plan.operations.filter(run__status__in=ACTIVE).select_related("run").first()


def cooldown_until(plan: DRPlan, operation: str, resuming: DROperation | None = None):
    """When the last failover (or failback) that was approved stops blocking another one. A
    resume is held to the cooldown of every other approved one, not of the attempt it continues."""
    approved = plan.operations.filter(operation=operation, approved_at__isnull=False, resumes__isnull=True)
    if resuming is not None:
        approved = approved.exclude(pk=resuming.first_attempt().pk)
    last = approved.order_by("-approved_at").first()
    if last is None or not plan.cooldown_minutes:
        return None
    until = last.approved_at + timedelta(minutes=plan.cooldown_minutes)
    return until if until > timezone.now() else None


def request(plan: DRPlan, principal, operation: str, *, reason: str, typed_name: str) -> Run:
    """Ask for a failover, drill or failback; it waits for a second person's approval."""
    environment = plan.environment
    if operation not in RUN_KINDS:
        raise Refused("Choose failover, drill or failback.", "invalid")
    if not may_dr(principal, environment):
        raise NotPermitted(
            f"Only DR operators may request a {operation} of {environment} "
            "(a token needs the dr scope and an owner who is a DR operator or admin there)."
        )
    if typed_name != environment.name:
        raise Refused(f"Type the environment's name, {environment.name}, exactly to confirm.", "name_mismatch")
    reason = reason.strip()
    if not reason:
        raise Refused("Say why: the reason is kept in the audit log.", "reason_required")
    _check_state(plan, operation)  # refuse early, without waiting for the plan's row
    with transaction.atomic():
        plan = _lock(plan)
        _check_state(plan, operation)  # again: what another request changed meanwhile counts
        return _launch(plan, principal, operation, reason, resumes=None)


def _lock(plan: DRPlan) -> DRPlan:
    """Take the plan's row (requests for one plan take turns) and read it afresh. FOR NO KEY
    UPDATE: operation records pointing at the plan are not held back."""
    return DRPlan.objects.select_for_update(no_key=True, of=("self",)).select_related("environment").get(pk=plan.pk)


def _refuse_if_busy(plan: DRPlan) -> None:
    busy = active_operation(plan)
    if busy is not None:
        raise Refused(
            f"Run #{busy.run_id} ({busy.get_operation_display().lower()}) is still "
            f"{busy.run.get_status_display().lower()}.",
            "busy",
            run=busy.run,
        )


def _check_state(plan: DRPlan, operation: str) -> None:
    """What the plan's state may forbid, the same request already active first (code duplicate)."""
    environment = plan.environment
    refuse_duplicate(RUN_KINDS[operation], environment, {"operation": operation})
    _refuse_if_busy(plan)
    if operation == Operation.FAILOVER and plan.active_site == Site.DR:
        raise Refused(f"{environment} already runs in {plan.dr_region}; fail back first.", "already_failed_over")
    if operation == Operation.FAILBACK and plan.active_site == Site.PRIMARY:
        raise Refused(f"{environment} already runs in {plan.primary_region}.", "not_failed_over")
    if operation == Operation.DRILL and not plan.drill_record_name:
        raise Refused("The DR plan has no drill DNS record; a drill never switches the live one.", "no_drill_record")
    if operation in (Operation.FAILOVER, Operation.FAILBACK):
        _refuse_if_cooling_down(plan, operation)


def _refuse_if_cooling_down(plan: DRPlan, operation: str, resuming: DROperation | None = None) -> None:
    """The same cooldown for a request and a resume: another failover (failback) approved within
    the plan's cooldown blocks this one."""
    if operation not in (Operation.FAILOVER, Operation.FAILBACK):
        return
    until = cooldown_until(plan, operation, resuming)
    if until is not None:
        raise Refused(
            f"A {operation} of {plan.environment} was approved recently; the cooldown lasts until {until:%H:%M} UTC.",
            "cooldown",
        )


def _launch(plan: DRPlan, principal, operation: str, reason: str, resumes: DROperation | None) -> Run:
    environment = plan.environment
    live = environment.live_release
    params = {
        **plan.definition(),
        "operation": operation,
        "reason": reason,
        "release": {"id": live.pk, "tag": live.tag, "image": live.image} if live else None,
        "resumes_run": resumes.run_id if resumes else None,
        "terraform": drterraform.stack_params(plan),
    }
    if isinstance(principal, ApiToken):
        params["requested_for"] = principal.created_by.get_username()
    with transaction.atomic(), through_service(RUN_KINDS[operation]):
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
    """Approve or reject a DR run: by another DR operator or an admin, within the window. One
    approval queues it; its time starts the RTO clock."""
    if run.kind not in DR_KINDS:
        raise Refused(f"Run #{run.pk} is not a DR run.", "invalid")
    environment = run.environment

    def approved(run: Run) -> str:
        now = timezone.now()
        DROperation.objects.filter(run=run).update(approved_at=now)
        waiting = lock_wait_note(run)
        if waiting:
            append_event(run, waiting, Level.WARNING, data={"waiting_for": "environment_lock"})
        return f"Approved by a second person at {now:%H:%M:%S} UTC; the RTO clock starts now. Queued."

    return vote(
        run,
        principal,
        decision,
        comment,
        person=person_of(principal),
        action=Action.DR,
        not_permitted=f"Only another DR operator or an admin may approve this in {environment}.",
        self_approval="You cannot approve your own request; a second DR operator or admin must.",
        approved=approved,
    )


def lock_wait_note(run: Run) -> str:
    """What an approved DR run will wait for before it starts, or "" when nothing holds it back.

    A failover or failback takes the environment's lock like any change, so it starts only when
    the run holding the lock ends (or a person unlocks it), after the runs queued before it.
    """
    try:
        if not get_kind(run.kind).locks_environment:
            return ""
    except UnknownRunKind:
        return ""
    environment = run.environment
    operation = run.kind.split(".", 1)[1]
    lock = EnvironmentLock.objects.filter(environment=environment).select_related("run").first()
    ahead = list(
        Run.objects.filter(environment=environment, status=Status.QUEUED, pk__lt=run.pk)
        .exclude(pk=getattr(lock, "run_id", None))
        .order_by("id")
        .values_list("id", flat=True)[:5]
    )
    parts = []
    if lock is not None and lock.run_id:
        holder = lock.run
        try:
            label = get_kind(holder.kind).label
        except UnknownRunKind:
            label = holder.kind
        parts.append(
            f"{environment} is locked by run #{holder.pk} ({label}, {holder.get_status_display().lower()} since "
            f"{lock.acquired_at:%H:%M:%S} UTC, requested by {holder.requested_by_name or 'the system'}): "
            f"this {operation} waits until it ends. Cancel run #{holder.pk} to start sooner."
        )
    elif lock is not None:
        parts.append(
            f"{environment} is locked by hand by {lock.describe()} since {lock.acquired_at:%H:%M:%S} UTC: this "
            f"{operation} waits until someone unlocks it on the environment's page."
        )
    if ahead:
        parts.append(f"Queued before it: {', '.join(f'run #{pk}' for pk in ahead)}.")
    return " ".join(parts)


def refuse_changes_while_failed_over(environment) -> None:
    """A deploy or rollback targets the primary region's service: refuse it while a failover
    is in flight or the DR region serves (opsconsole.environments.services.CHANGE_BLOCKERS)."""
    plan = DRPlan.objects.filter(environment=environment).first()
    if plan is None:
        return
    running = (
        plan.operations.filter(operation=Operation.FAILOVER, run__status__in=(Status.QUEUED, Status.RUNNING))
        .order_by("-id")
        .first()
    )
    if running is not None:
        raise Refused(
            f"{environment} is failing over to {plan.dr_region} (DR failover run #{running.run_id}, "
            f"{running.run.get_status_display().lower()}); deploys are refused until it has failed back.",
            "failed_over",
        )
    if plan.active_site == Site.DR:
        failover = (
            plan.operations.filter(operation=Operation.FAILOVER, dns_switched_at__isnull=False).order_by("-id").first()
        )
        by = f" by DR failover run #{failover.run_id}" if failover else ""
        raise Refused(
            f"{environment} is failed over to {plan.dr_region}{by}; deploys are refused until a failback "
            f"returns it to {plan.primary_region}.",
            "failed_over",
        )


def record_refusal(plan: DRPlan, principal, operation: str, refusal: Exception) -> None:
    """Audit a refused DR request or vote (past the permission check): the attempt on the most
    dangerous button is kept, though it changed nothing else."""
    record(
        f"dr.{operation}.refused",
        actor=person_of(principal),
        actor_name=principal_name(principal),
        target=f"dr_plan:{plan.pk}",
        environment=plan.environment.name,
        details={"code": getattr(refusal, "code", "forbidden"), "error": str(refusal)},
        outcome=Outcome.DENIED,
    )


def resume(operation: DROperation, principal) -> Run:
    """Run a failed or errored operation again; steps it finished are skipped. The original
    approval stands (the RTO clock keeps running from it), so no second vote is asked for."""
    plan = operation.plan
    if signed_in_user(principal) is None or not allowed(principal, Action.DR, plan.environment):
        raise NotPermitted(f"Only DR operators may resume a {operation.operation} of {plan.environment}.")
    refusal = operation.resume_refusal()
    if refusal is not None:
        raise Refused(*refusal)
    _refuse_if_cooling_down(plan, operation.operation, operation)
    _refuse_if_busy(plan)
    try:
        check_queue()
    except QueueUnavailable as exc:
        raise Refused(str(exc), "queue_unavailable") from None
    with transaction.atomic():
        plan = _lock(plan)
        operation.refresh_from_db()  # another resume of this attempt may have got the plan first
        refusal = operation.resume_refusal()
        if refusal is not None:
            raise Refused(*refusal)
        _refuse_if_cooling_down(plan, operation.operation, operation)
        _refuse_if_busy(plan)
        run = _launch(plan, principal, operation.operation, operation.reason, resumes=operation)
        record(
            f"dr.{operation.operation}.resumed",
            actor=signed_in_user(principal),
            actor_name=principal_name(principal),
            target=f"run:{run.pk}",
            environment=plan.environment.name,
            details={"run": run.pk, "resumes": operation.run_id},
        )
        append_event(run, f"Resumes run #{operation.run_id}; its finished steps are skipped.", Level.INFO)
    return run


def expire_approvals() -> int:
    return sum(expire_if_due(run) for run in Run.objects.filter(status=Status.AWAITING_APPROVAL, kind__in=DR_KINDS))
