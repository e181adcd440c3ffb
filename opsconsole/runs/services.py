"""Starting and stopping runs: the functions views, the API and the CLI all call.

launch(): permission -> validate -> duplicate? -> check the queue -> atomic(create run, audit) ->
dispatch on commit. Every user-caused error raises Refused with a clear message and changes nothing.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.urls import reverse

from opsconsole.access.permissions import allowed
from opsconsole.audit.log import record
from opsconsole.runs.context import append_event
from opsconsole.runs.dispatch import QueueUnavailable, check_queue, dispatch_safely
from opsconsole.runs.models import ACTIVE, IDENTITY_INDEX, IDENTITY_LENGTH, IllegalTransition, Level, Run, Status
from opsconsole.runs.registry import IDENTITIES, EnvironmentUse, RunKind, UnknownRunKind, get_kind


class Refused(Exception):
    """A request was refused and nothing changed: `str()` tells the user what to do, `code` is a
    stable machine-readable reason (the API returns it), `run` the run it points at, if any (a
    duplicate: the run already asked for). The one refusal type of every app."""

    def __init__(self, message: str, code: str = "refused", *, run: Run | None = None):
        super().__init__(message)
        self.code = code
        self.run = run


class NotPermitted(PermissionDenied):
    """The principal may not do this: a page and the API answer 403. Deliberately not a
    Refused, so a view that shows a refusal as a message does not turn it into a redirect."""


def principal_name(principal) -> str:
    if principal is None:
        return "system"
    if hasattr(principal, "token_hash"):
        return f"token:{principal.name}"
    return principal.get_username()


def signed_in_user(principal):
    """The principal as an audit actor: the signed-in user, or None (the system, a token)."""
    return principal if getattr(principal, "is_authenticated", False) else None


def person_of(principal):
    """The human behind a principal: the signed-in user, or the active owner of an active API token.
    None for the system, an anonymous user, a revoked token or one whose owner is gone or inactive."""
    if hasattr(principal, "token_hash"):
        owner = principal.created_by
        return owner if owner is not None and owner.is_active and principal.is_active else None
    return signed_in_user(principal)


_through_service: ContextVar[frozenset[str]] = ContextVar("launch_through_service", default=frozenset())


@contextmanager
def through_service(kind_name: str):
    """Opened by an app's service around its launch() of `kind_name`, a kind that starts
    `only_through` it: the service has enforced what the generic doors cannot (approvals, typed
    confirmation). It opens the door for that kind alone."""
    token = _through_service.set(_through_service.get() | {kind_name})
    try:
        yield
    finally:
        _through_service.reset(token)


def identity_of(kind: RunKind, params: dict) -> str:
    """What makes a request of `kind` with `params` the same as another (opsconsole/runs/registry.py
    IDENTITIES), or "" when the kind declares nothing."""
    identify = IDENTITIES.get(kind.name)
    return identify(params)[:IDENTITY_LENGTH] if identify is not None else ""


def active_duplicate(kind: RunKind, environment, identity: str) -> Run | None:
    """The active run of `kind` in `environment` with this identity, if any."""
    if not identity:
        return None
    return (
        Run.objects.filter(kind=kind.name, environment=environment, identity=identity, status__in=ACTIVE)
        .order_by("id")
        .first()
    )


def duplicate_refusal(kind: RunKind, run: Run) -> Refused:
    status = run.get_status_display().lower()
    return Refused(
        f"An identical request is already {status} on {run.environment}: {kind.label} run #{run.pk} "
        f"({reverse('run', kwargs={'run_id': run.pk})}). Follow that run instead of asking again.",
        "duplicate",
        run=run,
    )


def refuse_duplicate(kind_name: str, environment, params: dict) -> None:
    """Refuse (code `duplicate`, naming the run) when a run of `kind_name` with the same identity
    is active in `environment`. launch() asks this itself; a service asks it first when a
    duplicate should be named before its other refusals (a running deploy also holds the lock)."""
    kind = get_kind(kind_name)
    existing = active_duplicate(kind, environment, identity_of(kind, params))
    if existing is not None:
        raise duplicate_refusal(kind, existing)


def launch(
    kind_name: str,
    *,
    principal=None,
    environment=None,
    params: dict | None = None,
    awaiting_approval: bool = False,
    check_permission: bool = True,
) -> Run:
    """Create a run of `kind_name` and queue it (or leave it awaiting approval), as its contract
    says (opsconsole/runs/registry.py)."""
    try:
        kind = get_kind(kind_name)
    except UnknownRunKind as exc:
        raise Refused(str(exc), "unknown_kind") from None
    if kind.environment is EnvironmentUse.REQUIRED and environment is None:
        raise Refused(f"{kind.label} needs an environment.", "environment_required")
    if kind.environment is EnvironmentUse.NONE and environment is not None:
        raise Refused(f"{kind.label} does not take an environment.", "no_environment")
    if kind.only_through and kind.name not in _through_service.get():
        raise Refused(f"{kind.label} starts only through {kind.only_through}; nothing was started.", "use_service")
    if check_permission and not allowed(principal, kind.action, environment):
        where = f" in {environment}" if environment is not None else ""
        raise NotPermitted(f"You do not have permission to start {kind.label}{where}.")
    params = dict(params or {})
    if kind.validate is not None:
        try:
            params = kind.validate(params, environment)
        except ValueError as exc:
            # Not a typo to shrug off: parameters outside the kind's contract are how an insider
            # reaches for another environment's definitions or the worker's files, so it is audited.
            raise Refused(str(exc), "params_refused") from None
    identity = identity_of(kind, params)
    existing = active_duplicate(kind, environment, identity)
    if existing is not None:
        raise duplicate_refusal(kind, existing)
    if not awaiting_approval:
        try:
            check_queue()
        except QueueUnavailable as exc:
            raise Refused(str(exc), "queue_unavailable") from None

    user = signed_in_user(principal)
    with transaction.atomic():
        try:
            with transaction.atomic():
                run = Run.objects.create(
                    kind=kind.name,
                    environment=environment,
                    params=params,
                    identity=identity,
                    status=Status.AWAITING_APPROVAL if awaiting_approval else Status.QUEUED,
                    # A token's owner is the requester: the two-person rule must see them.
                    requested_by=person_of(principal),
                    requested_by_name=principal_name(principal),
                )
        except IntegrityError as exc:
            # An identical request got past the check above at the same moment; the unique
            # index made this insert wait for it and then refused.
            if not identity or getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") != IDENTITY_INDEX:
                raise
            existing = active_duplicate(kind, environment, identity)
            if existing is None:  # and it ended in between
                message = f"An identical request ({kind.label}) was made at the same moment; try again."
                raise Refused(message, "duplicate") from None
            raise duplicate_refusal(kind, existing) from None
        record(
            f"{kind.name}.requested",
            actor=user,
            actor_name=run.requested_by_name,
            target=f"run:{run.pk}",
            environment=environment.name if environment else "",
            details={"run": run.pk, "params": params},
        )
        if run.status == Status.QUEUED:
            transaction.on_commit(lambda: dispatch_safely(run.pk))
    return run


def cancel(run: Run, principal) -> Run:
    """Ask a run to stop. A run that has not started ends at once; a running one stops at its
    next checkpoint (cancel is cooperative)."""
    kind = get_kind(run.kind)
    if not allowed(principal, kind.action, run.environment):
        raise NotPermitted("You do not have permission to cancel this run.")
    if run.status not in ACTIVE:
        raise Refused(f"Run #{run.pk} has already ended ({run.get_status_display().lower()}).", "already_ended")
    user = signed_in_user(principal)
    with transaction.atomic():
        Run.objects.filter(pk=run.pk).update(cancel_requested=True)
        run.cancel_requested = True
        if run.status in (Status.QUEUED, Status.AWAITING_APPROVAL):
            try:
                run.transition(Status.CANCELED)
            except IllegalTransition:
                pass  # a worker claimed it meanwhile; it will see the flag at its next checkpoint
        append_event(run, f"Cancel requested by {principal_name(principal)}.", Level.WARNING)
        record(
            f"{run.kind}.cancel_requested",
            actor=user,
            actor_name=principal_name(principal),
            target=f"run:{run.pk}",
            environment=run.environment.name if run.environment_id else "",
            details={"run": run.pk, "status": run.status},
        )
    return run
