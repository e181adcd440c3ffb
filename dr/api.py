"""JSON API for disaster recovery: DR plans with their latest readiness, the history of failovers,
drills and failbacks with RTO/RPO, and the guarded requests and votes.

The guard is the DR page's, through dr.services: DR permission, the environment's name typed in
`confirm`, a reason, and a different person's approval. Re-authentication, for an API caller:
a browser session must be in sudo mode (confirmed its password recently); a token is a credential
an admin minted with the `dr` scope and that is shown once, so it stands in for the password, and
the person behind it (its owner, who must still be a DR operator or admin there) is the requester
for the two-person rule. Every refusal after the permission check (a failed CSRF check, no sudo
mode, bad input, the state) is audited as `dr.<operation>.refused` (outcome denied) and changes
nothing else; a body over the upload limit is refused 413 before it is read, unaudited. An
environment the caller may not see answers exactly as a name no environment has, whether or not
it has a DR plan (opsconsole.api.environment_for).

A request honours an Idempotency-Key header (opsconsole/runs/idempotency.py: the same key answers
the first answer again and starts nothing); a request of an operation already active is a 409
`duplicate` naming its run (`run`, `url`).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from dr import services
from dr.models import RUN_KINDS, DROperation, DRPlan, Operation
from opsconsole.access.models import Action
from opsconsole.access.permissions import allowed, principal_of, visible_environment_ids
from opsconsole.access.sudo import in_sudo_mode
from opsconsole.api import BadRequest, TooLarge, environment_for, error, json_body, query_before, query_choice
from opsconsole.api import api_endpoint as endpoint
from opsconsole.runs.api import enforce_csrf_for_session, refusal_answer, run_json
from opsconsole.runs.idempotency import idempotent
from opsconsole.runs.models import Run
from opsconsole.runs.services import NotPermitted, Refused
from opsconsole.ui.pagination import keyset_page

# Refusals the state causes (409); the rest are bad input (400), but self-approval (403).
CONFLICT_CODES = {
    "busy",
    "duplicate",
    "already_failed_over",
    "not_failed_over",
    "cooldown",
    "not_awaiting",
    "expired",
    "already_voted",
    "queue_unavailable",
}


def readiness_json(plan: DRPlan) -> dict | None:
    check = plan.checks.first()
    if check is None:
        return None
    return {
        "ok": check.ok,
        "checked_at": check.checked_at.isoformat(),
        "requested_by": check.requested_by_name,
        "items": check.items,
    }


def plan_json(plan: DRPlan) -> dict:
    active = services.active_operation(plan)
    cooldown = services.cooldown_until(plan, Operation.FAILOVER)
    fields = (
        "primary_region",
        "dr_region",
        "active_site",
        "hosted_zone_id",
        "record_name",
        "record_type",
        "primary_target",
        "dr_target",
        "drill_record_name",
        "dr_db_instance",
        "dr_ecs_cluster",
        "dr_ecs_service",
        "dr_desired_count",
        "terraform_var_file",
        "terraform_workspace",
        "rpo_minutes",
        "rto_minutes",
        "approval_window_minutes",
        "cooldown_minutes",
    )
    return {
        "environment": plan.environment.name,
        **{name: getattr(plan, name) for name in fields},
        "active_run": active.run_id if active else None,
        "failover_cooldown_until": cooldown.isoformat() if cooldown else None,
        "readiness": readiness_json(plan),
    }


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def operation_json(op: DROperation) -> dict:
    plan = op.plan
    return {
        "run": op.run_id,
        "operation": op.operation,
        "status": op.run.status,
        "reason": op.reason,
        "requested_by": op.run.requested_by_name,
        "created_at": op.created_at.isoformat(),
        "approved_at": _iso(op.approved_at),
        "resumes": op.resumes.run_id if op.resumes_id else None,
        "snapshot": op.snapshot_identifier or None,
        "snapshot_at": _iso(op.snapshot_at),
        "dns_switched_at": _iso(op.dns_switched_at),
        "rto_seconds": op.rto_seconds,
        "rpo_seconds": op.rpo_seconds,
        "rto_met": None if op.rto_seconds is None else op.rto_seconds <= plan.rto_minutes * 60,
        "rpo_met": None if op.rpo_seconds is None else op.rpo_seconds <= plan.rpo_minutes * 60,
        "torn_down": op.torn_down,
    }


def _plan(request, name: str, action: str = Action.VIEW) -> DRPlan:
    """The environment first (one it may not see answers as one that does not exist), then its plan:
    whether an environment has a DR plan is told only to those who may `action` there."""
    environment = environment_for(request, name, action)
    plan = DRPlan.objects.filter(environment=environment).first()
    if plan is None:
        raise Http404
    plan.environment = environment
    return plan


@endpoint("GET")
def plans(request):
    principal = principal_of(request)
    if not allowed(principal, Action.VIEW):
        raise PermissionDenied("You do not have permission to view.")
    found = DRPlan.objects.select_related("environment")
    env_ids = visible_environment_ids(principal)
    if env_ids is not None:
        found = found.filter(environment_id__in=env_ids)
    return JsonResponse({"plans": [plan_json(plan) for plan in found]})


@endpoint("GET")
def plan_detail(request, name: str):
    return JsonResponse(plan_json(_plan(request, name)))


@endpoint("GET")
def operations(request, name: str):
    plan = _plan(request, name)
    found = plan.operations.select_related("run", "plan", "resumes")
    kind = query_choice(request, "operation", Operation.values)
    if kind is not None:
        found = found.filter(operation=kind)
    page = keyset_page(found, "id", query_before(request))
    return JsonResponse({"operations": [operation_json(op) for op in page.items], "next_before": page.next_before})


def _guarded(request, plan: DRPlan, operation: str, act):
    """Permission (403, nothing recorded) -> CSRF and re-authentication (403, audited) -> act; any
    later refusal is audited, except a body too large to read (413)."""
    principal = principal_of(request)
    if not services.may_dr(principal, plan.environment):
        raise PermissionDenied(
            f"Only DR operators may do this in {plan.environment} (a token needs the dr scope and an owner who "
            "is a DR operator or admin there)."
        )
    try:
        enforce_csrf_for_session(request)
        if request.api_token is None and not in_sudo_mode(request):
            raise PermissionDenied("Confirm your password first (sudo mode), then repeat the request.")
    except PermissionDenied as exc:
        services.record_refusal(plan, principal, operation, exc)
        raise
    try:
        return act(principal, json_body(request))
    except TooLarge:
        raise  # 413 from api_endpoint; the body was not read, so there is no request to audit
    except (Refused, BadRequest, NotPermitted) as exc:
        code = getattr(exc, "code", "forbidden")
        services.record_refusal(plan, principal, operation, exc)
        if isinstance(exc, NotPermitted) or code == "self_approval":
            return error(403, str(exc), code)
        if isinstance(exc, Refused) and exc.run is not None:
            return refusal_answer(exc, CONFLICT_CODES)  # with the run it names
        if code == "queue_unavailable":
            return error(503, str(exc), code)
        return error(409 if code in CONFLICT_CODES else 400, str(exc), code)


def _text(body: dict, name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string.", "invalid")
    return value


def _request(request, name: str, operation: str):
    plan = _plan(request, name, Action.DR)

    def act(principal, body):
        run = services.request(
            plan, principal, operation, reason=_text(body, "reason"), typed_name=_text(body, "confirm")
        )
        op = DROperation.objects.select_related("run", "plan", "resumes").get(run=run)
        return JsonResponse({"run": run_json(run), "operation": operation_json(op)}, status=202)

    return _guarded(request, plan, operation, act)


@csrf_exempt
@endpoint("POST")
@idempotent
def failover(request, name: str):
    return _request(request, name, Operation.FAILOVER)


@csrf_exempt
@endpoint("POST")
@idempotent
def drill(request, name: str):
    return _request(request, name, Operation.DRILL)


@csrf_exempt
@endpoint("POST")
@idempotent
def failback(request, name: str):
    return _request(request, name, Operation.FAILBACK)


@csrf_exempt
@endpoint("POST")
def decide(request, name: str, run_id: int):
    plan = _plan(request, name, Action.DR)
    run = Run.objects.filter(pk=run_id, environment=plan.environment, kind__in=RUN_KINDS.values()).first()
    if run is None:
        raise Http404
    operation = run.kind.split(".", 1)[1]

    def act(principal, body):
        services.decide(run, principal, _text(body, "decision"), _text(body, "comment"))
        run.refresh_from_db()
        op = DROperation.objects.select_related("run", "plan", "resumes").get(run=run)
        return JsonResponse({"run": run_json(run), "operation": operation_json(op)})

    return _guarded(request, plan, operation, act)
