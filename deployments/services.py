"""Deploy, roll back, approve and register releases: the functions pages, the API and the
CLI call. Each checks its preconditions, refuses with a clear message (changing nothing), and
otherwise changes state, audits and enqueues in one transaction."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from deployments.models import DIGEST_PATTERN, TAG_PATTERN, Deployment, DeploymentKind, Release
from opsconsole.access.models import Action
from opsconsole.access.permissions import allowed
from opsconsole.audit.log import record
from opsconsole.environments.models import Environment, Strategy
from opsconsole.environments.services import check_blockers
from opsconsole.runs.approvals import environment_approvals_met, expire_if_due, vote
from opsconsole.runs.models import ACTIVE, EnvironmentLock, Run, Status
from opsconsole.runs.registry import request_identity
from opsconsole.runs.services import (
    NotPermitted,
    Refused,
    launch,
    principal_name,
    refuse_duplicate,
    signed_in_user,
    through_service,
)

DEPLOY_KINDS = ("deployments.deploy", "deployments.rollback")


# --- Releases ----------------------------------------------------------------------------------


def register_release(
    principal,
    *,
    repository: str,
    tag: str,
    digest: str,
    git_sha: str = "",
    commit_message: str = "",
    commit_url: str = "",
) -> tuple[Release, bool]:
    """Register an image as a release. Idempotent on the digest: returns (release, created)."""
    if not allowed(principal, Action.DEPLOY) and not allowed(principal, Action.RUN):
        raise NotPermitted("You do not have permission to register releases.")
    repository, tag, digest = repository.strip(), tag.strip(), digest.strip()
    if not repository or len(repository) > 255:
        raise Refused("repository is required (at most 255 characters).", "invalid")
    if not TAG_PATTERN.match(tag):
        raise Refused(f"{tag[:60]!r} is not a valid image tag.", "invalid_tag")
    if not DIGEST_PATTERN.match(digest):
        raise Refused("digest must look like sha256:<64 hex characters>.", "invalid_digest")
    if git_sha and not (len(git_sha) <= 40 and all(c in "0123456789abcdef" for c in git_sha.lower())):
        raise Refused("git_sha must be a hexadecimal commit id.", "invalid")
    if commit_url and not commit_url.startswith(("https://", "http://")):
        raise Refused("commit_url must be an http(s) URL.", "invalid")
    existing = Release.objects.filter(digest=digest).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            release = Release.objects.create(
                repository=repository,
                tag=tag,
                digest=digest,
                git_sha=git_sha.lower(),
                commit_message=commit_message[:5000],
                commit_url=commit_url[:300],
                registered_by=signed_in_user(principal),
                registered_by_name=principal_name(principal),
            )
            record(
                "deployments.release.registered",
                actor=signed_in_user(principal),
                actor_name=principal_name(principal),
                target=f"release:{release.pk}",
                details={"tag": tag, "digest": digest, "repository": repository},
            )
    except IntegrityError:  # registered concurrently by someone else: same answer
        return Release.objects.get(digest=digest), False
    return release, True


# --- Deploy and roll back ------------------------------------------------------------------------


def _check_state(environment: Environment, principal, override_reason: str) -> str:
    """What the environment's state may forbid: a change blocker (failed over to DR), a lock,
    another deploy or rollback in flight, a freeze window. Returns the freeze override used, if any."""
    check_blockers(environment)
    lock = EnvironmentLock.objects.filter(environment=environment).first()
    if lock is not None:
        raise Refused(f"{environment} is locked by {lock.describe()}. Unlock it first.", "locked")
    _refuse_if_busy(environment)
    freeze = environment.active_freeze()
    if freeze is None:
        return ""
    if not override_reason.strip():
        raise Refused(f"{environment} is frozen until {freeze.ends_at:%Y-%m-%d %H:%M} UTC: {freeze.reason}.", "frozen")
    if not allowed(principal, Action.ADMIN, environment):
        raise NotPermitted("Only an admin may override a freeze window.")
    return override_reason.strip()[:200]


def _snapshot(environment: Environment) -> dict:
    """The environment's definition as the run will use it, copied at launch."""
    fields = (
        "aws_region",
        "role_arn",
        "ecs_cluster",
        "ecs_service",
        "task_family",
        "container_name",
        "strategy",
        "migration_command",
        "smoke_checks",
        "alarm_names",
        "bake_seconds",
        "insufficient_data",
        "rollout_timeout_seconds",
        "migration_timeout_seconds",
        "green_service",
        "listener_arn",
        "test_listener_arn",
        "blue_target_group_arn",
        "green_target_group_arn",
        "test_url",
        "traffic_steps",
        "live_color",
        "approval_ttl_minutes",
        "prometheus_query",
        "prometheus_threshold",
        "prometheus_comparison",
    )
    return {**{name: getattr(environment, name) for name in fields}, "prometheus_url": environment.prometheus_endpoint}


def _params(environment: Environment, release: Release) -> dict:
    return {
        **_snapshot(environment),
        "environment": environment.name,
        "release": {"id": release.pk, "tag": release.tag, "digest": release.digest, "image": release.image},
        "previous_release_id": environment.live_release_id,
        "scale_down_old_color": settings.BLUE_GREEN_SCALE_DOWN,
    }


@request_identity("deployments.deploy")
def deploy_identity(params: dict) -> str:
    """Two deploys are the same request when they roll out the same image the same way."""
    return f"{params['release']['digest']} {params['strategy']}"


@request_identity("deployments.rollback")
def rollback_identity(params: dict) -> str:
    """Two rollbacks are the same request when they go back to the same release."""
    return params["release"]["digest"]


def request_deploy(environment: Environment, release: Release, principal, *, override_reason: str = "") -> Run:
    return _request("deployments.deploy", DeploymentKind.DEPLOY, environment, release, principal, override_reason)


def request_rollback(environment: Environment, release: Release, principal, *, override_reason: str = "") -> Run:
    """Roll back to an earlier release that was deployed successfully to this environment."""
    return _request("deployments.rollback", DeploymentKind.ROLLBACK, environment, release, principal, override_reason)


def _check(kind_name: str, environment: Environment, release: Release, principal, override_reason: str) -> str:
    """Every refusal of a deploy or rollback past the permission, in the order a user should hear
    them: the same request already active (named before the lock it holds), the state, and for a
    rollback its target. Returns the freeze override used, if any."""
    refuse_duplicate(kind_name, environment, _params(environment, release))
    override = _check_state(environment, principal, override_reason)
    if kind_name == "deployments.rollback":
        good = Deployment.objects.filter(
            environment=environment, release=release, run__status=Status.SUCCEEDED
        ).exists()
        if not good:
            raise Refused(
                f"{release.tag} was never deployed successfully to {environment}; "
                "roll back only to a release from its history.",
                "not_a_good_release",
            )
        if environment.live_release_id == release.pk:
            raise Refused(f"{release.tag} is already live on {environment}.", "already_live")
    return override


def _lock(environment: Environment) -> Environment:
    """Take the environment's row, FOR NO KEY UPDATE (it does not hold back rows that merely point
    at the environment), and read it afresh."""
    return Environment.objects.select_for_update(no_key=True).get(pk=environment.pk)


def _request(
    kind_name: str, kind: str, environment: Environment, release: Release, principal, override_reason: str
) -> Run:
    if not allowed(principal, Action.DEPLOY, environment):
        raise NotPermitted(f"You do not have permission to deploy to {environment}.")
    if not environment.is_deployable:
        raise Refused(f"{environment} has no ECS cluster, service and container configured.", "not_configured")
    _check(kind_name, environment, release, principal, override_reason)  # refuse early, without waiting
    with transaction.atomic(), through_service(kind_name):
        # Requests for one environment take turns here, and each checks everything again once it
        # holds the row: an identical request, a lock or a freeze that came in meanwhile refuses
        # this one, so a double submit or a retrying client makes one run.
        environment = _lock(environment)
        override = _check(kind_name, environment, release, principal, override_reason)
        run = launch(
            kind_name,
            principal=principal,
            environment=environment,
            params=_params(environment, release),
            awaiting_approval=environment.required_approvals > 0,
            check_permission=False,
        )
        Deployment.objects.create(
            run=run,
            environment=environment,
            release=release,
            kind=kind,
            previous_release_id=environment.live_release_id,
            freeze_override_reason=override,
            color="" if environment.strategy == Strategy.ROLLING else environment.live_color,
        )
        if override:
            record(
                "deployments.freeze.overridden",
                actor=signed_in_user(principal),
                actor_name=principal_name(principal),
                target=f"run:{run.pk}",
                environment=environment.name,
                details={"reason": override},
            )
    return run


def _refuse_if_busy(environment: Environment) -> None:
    """Another deploy or rollback in flight is a conflict; other runs (a backup, a Terraform plan)
    only serialise with it through the environment lock: the deploy waits in the queue."""
    active = (
        Run.objects.filter(environment=environment, status__in=ACTIVE, kind__in=DEPLOY_KINDS).order_by("id").first()
    )
    if active is not None:
        raise Refused(
            f"Run #{active.pk} ({active.kind}) is still {active.get_status_display().lower()} on {environment}.",
            "busy",
            run=active,
        )


# --- Approvals -----------------------------------------------------------------------------------


def decide(run: Run, principal, decision: str, comment: str = "") -> Run:
    """Approve or reject a deploy or rollback awaiting approval; it is queued once enough people
    approved. Other kinds have their own rules and pages (Terraform applies: the plan's author may
    not approve; DR runs: DR operators in sudo mode), so they are never voted on here."""
    environment = run.environment
    if run.kind not in DEPLOY_KINDS:
        raise Refused(f"Run #{run.pk} is not a deploy or rollback; decide on it from its own page.", "invalid")

    def enough(run: Run) -> str | None:
        # The environment may have failed over since the request: refuse the vote (rolled back).
        check_blockers(environment)
        return environment_approvals_met(run)

    return vote(
        run,
        principal,
        decision,
        comment,
        person=signed_in_user(principal),
        action=Action.APPROVE,
        not_permitted=f"You may not approve deploys to {environment}.",
        self_approval="You cannot approve your own request; ask another approver.",
        approved=enough,
    )


def expire_approvals() -> int:
    return sum(expire_if_due(run) for run in Run.objects.filter(status=Status.AWAITING_APPROVAL, kind__in=DEPLOY_KINDS))


# --- Locks -----------------------------------------------------------------------------------------


def lock_after_rollback(run: Run, reason: str, *, completed: bool = True) -> None:
    """Turn the run's lock into a held lock, so nothing redeploys the bad release until someone unlocks."""
    prefix = f"Rolled back by run #{run.pk}" if completed else f"Rollback by run #{run.pk} did not complete"
    text = f"{prefix}: {reason}"[:200]
    with transaction.atomic():
        updated = EnvironmentLock.objects.filter(run=run).update(run=None, held_by="opsconsole", reason=text)
        if not updated:
            EnvironmentLock.objects.get_or_create(
                environment=run.environment, defaults={"held_by": "opsconsole", "reason": text}
            )
        record(
            "deployments.environment.locked",
            actor_name="opsconsole",
            target=f"environment:{run.environment.name}",
            environment=run.environment.name,
            details={"reason": text, "run": run.pk},
        )
