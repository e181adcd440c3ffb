"""Plan, request an apply, approve it, check drift: the functions the pages and the scheduled
task call. Each refuses with a clear message and changes nothing, or changes state, audits and
enqueues in one transaction (through the run engine's launch()).

Approvals use the run engine's votes (opsconsole.runs.approvals.vote: audited, one vote per
person, no self-approval, approval window); applying adds one rule: the person who made the plan
may not approve applying it either.
"""

from __future__ import annotations

from django.db import transaction

from infrastructure.models import Plan, Workspace
from opsconsole.access.models import Action
from opsconsole.access.permissions import allowed
from opsconsole.runs.approvals import environment_approvals_met, expire_if_due, vote
from opsconsole.runs.models import ACTIVE, Run, Status
from opsconsole.runs.services import NotPermitted, Refused, launch, person_of, signed_in_user, through_service

TERRAFORM_KINDS = ("terraform.plan", "terraform.apply", "terraform.drift")


def workspace_of(environment) -> Workspace:
    workspace = Workspace.objects.select_related("environment").filter(environment=environment).first()
    if workspace is None:
        raise Refused(f"{environment} has no Terraform workspace; an admin adds one first.", "no_workspace")
    return workspace


def request_plan(environment, principal) -> Run:
    if not allowed(principal, Action.DEPLOY, environment):
        raise NotPermitted(f"You may not plan Terraform changes to {environment}.")
    workspace_of(environment)  # refuses clearly when there is none
    return launch("terraform.plan", principal=principal, environment=environment, check_permission=False)


def request_apply(plan: Plan, principal) -> Run:
    """Ask to apply a saved plan; the run waits for another person's approval."""
    environment = plan.workspace.environment
    if not allowed(principal, Action.DEPLOY, environment):
        raise NotPermitted(f"You may not apply Terraform changes to {environment}.")
    stale = plan.staleness()
    if stale:
        raise Refused(stale, "stale_plan")
    pending = plan.apply_runs().filter(status__in=ACTIVE).first()
    if pending is not None:
        raise Refused(f"Run #{pending.pk} already applies this plan.", "already_requested")
    with through_service("terraform.apply"):
        return launch(
            "terraform.apply",
            principal=principal,
            environment=environment,
            params={"plan_run": plan.run_id},
            awaiting_approval=True,
            check_permission=False,
        )


def decide(run: Run, principal, decision: str, comment: str = "") -> Run:
    """Approve or reject an apply. Neither its requester nor the plan's author may approve it,
    and a plan that went stale while waiting is refused."""
    if run.kind != "terraform.apply":
        raise Refused(f"Run #{run.pk} is not a Terraform apply.", "invalid")
    plan = Plan.objects.select_related("run", "workspace").filter(run_id=run.params.get("plan_run")).first()
    person = person_of(principal)
    if decision == "approve" and plan is not None:
        if person is not None and plan.run.requested_by_id == person.pk:
            raise Refused("You made this plan; another approver must approve applying it.", "self_approval")
        if (
            person is not None
            and run.requested_by_id != person.pk
            and allowed(principal, Action.APPROVE, run.environment)
        ):
            stale = plan.staleness(exclude_run=run.pk)
            if stale:
                raise Refused(stale, "stale_plan")
    return vote(
        run,
        principal,
        decision,
        comment,
        person=signed_in_user(principal),
        action=Action.APPROVE,
        not_permitted=f"You may not approve Terraform applies in {run.environment}.",
        self_approval="You cannot approve your own request; ask another approver.",
        approved=environment_approvals_met,
    )


def expire_applies() -> int:
    """Cancel applies nobody approved within the environment's approval window."""
    waiting = Run.objects.filter(kind="terraform.apply", status=Status.AWAITING_APPROVAL)
    return sum(expire_if_due(run) for run in waiting)


def launch_drift_checks() -> list[Run]:
    """One drift check per workspace that wants it and has no Terraform run in progress."""
    launched = []
    for workspace in Workspace.objects.filter(drift_check=True).select_related("environment"):
        busy = Run.objects.filter(
            environment=workspace.environment, kind__in=TERRAFORM_KINDS, status__in=ACTIVE
        ).exists()
        if busy:
            continue
        with transaction.atomic():
            launched.append(
                launch(
                    "terraform.drift",
                    principal=None,
                    environment=workspace.environment,
                    check_permission=False,
                )
            )
    return launched
