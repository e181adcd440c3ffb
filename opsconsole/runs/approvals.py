"""Votes on runs awaiting approval: the rules every approval shares (deploys, rollbacks, Terraform
applies, DR failovers, drills and failbacks).

vote(): the run still awaits approval -> the voter holds the action -> not the requester -> a known
decision -> the window has not passed -> a reject says why -> atomic(one vote per person, audit,
event, and on approval the caller's rule decides whether the run is queued). A refusal changes
nothing. The callers keep only what differs: which action votes, the messages, and when enough
people approved.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from opsconsole.access.permissions import allowed
from opsconsole.audit.log import record
from opsconsole.audit.models import Outcome
from opsconsole.runs.context import append_event
from opsconsole.runs.dispatch import QueueUnavailable, check_queue, dispatch_safely
from opsconsole.runs.models import Approval, Decision, IllegalTransition, Level, Run, Status
from opsconsole.runs.services import NotPermitted, Refused, principal_name


def approval_deadline(run: Run) -> datetime:
    """When a run nobody approved is canceled: its request time plus the TTL copied at launch."""
    ttl = run.params.get("approval_ttl_minutes", 240)
    return run.created_at + timedelta(minutes=ttl)


def vote(
    run: Run,
    principal,
    decision: str,
    comment: str = "",
    *,
    person,
    action: str,
    not_permitted: str,
    self_approval: str,
    approved: Callable[[Run], str | None],
) -> Run:
    """Record `person`'s vote on `run`, cast through `principal` (the person, or a token they own).

    `approved(run)` runs inside the transaction after an approving vote: it returns the event
    text to queue the run with, or None while more votes are needed.
    """
    environment = run.environment
    if run.status != Status.AWAITING_APPROVAL:
        raise _not_awaiting(run)
    if person is None or not allowed(principal, action, environment) or not allowed(person, action, environment):
        raise NotPermitted(not_permitted)
    if run.requested_by_id == person.pk:
        raise Refused(self_approval, "self_approval")
    if decision not in Decision.values:
        raise Refused("decision must be approve or reject.", "invalid")
    if expire_if_due(run):
        raise Refused(f"The approval window for run #{run.pk} has passed; it was canceled.", "expired")
    comment = comment.strip()[:500]
    if decision == Decision.REJECT and not comment:
        raise Refused("Say why you reject it in the comment.", "comment_required")
    voter = principal_name(principal)
    if voter != person.get_username():
        voter = f"{voter} (owned by {person.get_username()})"
    with transaction.atomic():
        # Votes on one run take turns: under the row lock the status is current and the count of
        # approvals includes every vote committed before this one.
        run.status = Run.objects.select_for_update().values_list("status", flat=True).get(pk=run.pk)
        if run.status != Status.AWAITING_APPROVAL:
            raise _not_awaiting(run)
        try:
            Approval.objects.create(run=run, user=person, decision=decision, comment=comment)
        except IntegrityError:
            raise Refused("You have already voted on this run.", "already_voted") from None
        record(
            f"{run.kind}.{'approved' if decision == Decision.APPROVE else 'rejected'}",
            actor=person,
            actor_name=principal_name(principal),
            target=f"run:{run.pk}",
            environment=environment.name,
            details={"run": run.pk, "comment": comment},
        )
        verdict = "Approved" if decision == Decision.APPROVE else "Rejected"
        append_event(run, f"{verdict} by {voter}" + (f": {comment}" if comment else "."), Level.INFO)
        if decision == Decision.REJECT:
            _transition(run, Status.CANCELED, error=f"Rejected by {voter}: {comment}")
            return run
        queued = approved(run)
        if queued is not None:
            try:
                check_queue()
            except QueueUnavailable as exc:
                raise Refused(str(exc), "queue_unavailable") from None
            _transition(run, Status.QUEUED)
            append_event(run, queued)
            transaction.on_commit(lambda: dispatch_safely(run.pk))
    return run


def environment_approvals_met(run: Run) -> str | None:
    """The usual `approved` rule: as many approvals as the run's environment requires (at least one)."""
    required = run.environment.required_approvals
    approvals = run.approvals.filter(decision=Decision.APPROVE).count()
    if approvals < required:
        return None
    return f"Approved ({approvals} of {required}); queued."


def _not_awaiting(run: Run) -> Refused:
    return Refused(
        f"Run #{run.pk} is not awaiting approval (it is {run.get_status_display().lower()}).", "not_awaiting"
    )


def _transition(run: Run, status: str, **fields) -> None:
    """Move a voted run on; if it moved meanwhile (canceled, expired), refuse the vote (rolled back)."""
    try:
        run.transition(status, **fields)
    except IllegalTransition:
        run.refresh_from_db(fields=["status"])
        raise _not_awaiting(run) from None


def expire_if_due(run: Run) -> bool:
    """Cancel a run nobody approved within its window; True if it was canceled now."""
    if run.status != Status.AWAITING_APPROVAL or timezone.now() < approval_deadline(run):
        return False
    try:
        run.transition(Status.CANCELED, error="Approval expired.")
    except IllegalTransition:
        return False
    append_event(run, "Canceled: nobody approved it in time.", Level.WARNING)
    record(
        f"{run.kind}.expired",
        target=f"run:{run.pk}",
        environment=run.environment.name,
        details={"run": run.pk},
        outcome=Outcome.FAILURE,
    )
    return True
