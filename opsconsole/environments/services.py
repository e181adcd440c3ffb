"""What every app asks of an environment: which ones a user sees, the environment a request names
(without telling whether an invisible one exists), whether an app forbids changing one now (change
blockers), and the manual lock a person holds to stop changes."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404

from opsconsole.access.models import Action
from opsconsole.access.permissions import allowed, principal_of, visible_environment_ids
from opsconsole.audit.log import record
from opsconsole.environments.models import Environment
from opsconsole.runs.models import EnvironmentLock, LockHeld
from opsconsole.runs.runner import dispatch_next_waiting
from opsconsole.runs.services import NotPermitted, Refused, principal_name, signed_in_user

ChangeBlocker = Callable[[Environment], None]

# Apps that can forbid changing an environment register a check here (dr: the environment is
# failed over to its DR region). Each raises Refused, or returns to allow.
CHANGE_BLOCKERS: list[ChangeBlocker] = []


def register_change_blocker(blocker: ChangeBlocker) -> None:
    if blocker not in CHANGE_BLOCKERS:
        CHANGE_BLOCKERS.append(blocker)


def check_blockers(environment: Environment) -> None:
    """Raise Refused if an app forbids changing `environment` now (at request, approval and start)."""
    for blocker in CHANGE_BLOCKERS:
        blocker(environment)


def visible_environments(user):
    """The environments `user` may see (all of them for a role bound everywhere)."""
    envs = Environment.objects.all()
    env_ids = visible_environment_ids(user)
    return envs if env_ids is None else envs.filter(pk__in=env_ids)


NAME_LENGTH = Environment._meta.get_field("name").max_length


class UnknownEnvironment(Http404):
    """No environment has that name, told to a principal that sees every environment (it could list
    them anyway). A page answers 404; the API turns it into its own 404 `not_found`."""


def environment_named(principal, name: str, action: str) -> Environment:
    """The environment called `name`, in which `principal` may `action`; else a refusal.

    A principal that does not see every environment (a user or token scoped to some) gets the same
    answer for a name no environment has as for an environment it may not see: PermissionDenied
    with a message that names neither, so it cannot probe which names exist. A principal that sees
    every environment could list them, so it is told plainly: UnknownEnvironment. One it sees but
    may not `action` in is named, as require() names it.
    Call it before anything else a page or route checks about the environment (its DR plan, a run
    in it), so no other answer tells the two apart either."""
    environment = Environment.objects.filter(name=name).first() if len(name) <= NAME_LENGTH else None
    if environment is not None and allowed(principal, action, environment):
        return environment
    visible = visible_environment_ids(principal)
    if environment is None and visible is None:
        raise UnknownEnvironment(f"There is no environment called {name[:NAME_LENGTH]!r}.")
    if environment is not None and (visible is None or environment.pk in visible):
        raise PermissionDenied(f"You do not have permission to {action} in {environment}.")
    raise PermissionDenied(f"You do not have permission to {action} in an environment of that name, or there is none.")


def environment_for_page(request, name: str, action: str) -> Environment:
    """environment_named() for a page's request: a refusal is the 403 page, an unknown name a 404."""
    return environment_named(principal_of(request), name, action)


# The audit codes of a manual lock keep the names they had when locks lived in the deployments
# app: reviewers and exports filter on them.


def lock(environment: Environment, principal, reason: str) -> EnvironmentLock:
    """Hold `environment` by hand so nothing changes it until someone unlocks it."""
    if not allowed(principal, Action.DEPLOY, environment):
        raise NotPermitted(f"You may not lock {environment}.")
    reason = reason.strip()
    if not reason:
        raise Refused("Say why you lock it.", "reason_required")
    with transaction.atomic():
        # Take turns with deploy and rollback requests (they check the lock again holding this row),
        # so a lock is strictly before or after a request, never between its check and its run.
        Environment.objects.select_for_update(no_key=True).filter(pk=environment.pk).first()
        try:
            held = EnvironmentLock.acquire(environment, held_by=principal_name(principal), reason=reason[:200])
        except LockHeld as exc:
            raise Refused(str(exc), "locked") from None
        record(
            "deployments.environment.locked",
            actor=signed_in_user(principal),
            actor_name=principal_name(principal),
            target=f"environment:{environment.name}",
            environment=environment.name,
            details={"reason": reason},
        )
    return held


def unlock(environment: Environment, principal) -> None:
    """Release a lock held by hand (a run's own lock ends with the run) and start what waited."""
    if not allowed(principal, Action.DEPLOY, environment):
        raise NotPermitted(f"You may not unlock {environment}.")
    with transaction.atomic():
        held = EnvironmentLock.objects.select_for_update().filter(environment=environment).first()
        if held is None:
            raise Refused(f"{environment} is not locked.", "not_locked")
        if held.run_id is not None:
            raise Refused(
                f"{environment} is held by run #{held.run_id} while it runs; cancel the run instead.", "held_by_run"
            )
        held.delete()
        record(
            "deployments.environment.unlocked",
            actor=signed_in_user(principal),
            actor_name=principal_name(principal),
            target=f"environment:{environment.name}",
            environment=environment.name,
            details={"was": held.describe()},
        )
        dispatch_next_waiting(environment.pk)
