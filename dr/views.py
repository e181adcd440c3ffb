"""The DR page (plans, readiness checklist, the guarded buttons, pending approvals, history and the
drill chart) and the forms behind request, approve/reject, resume and check-now."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dr import readiness, services
from dr.models import RUN_KINDS, DROperation, DRPlan, Operation, Site
from opsconsole.access.models import Action
from opsconsole.access.permissions import allowed, require
from opsconsole.access.sudo import sudo_required
from opsconsole.audit.log import record
from opsconsole.environments.services import environment_for_page, visible_environments
from opsconsole.runs.approvals import approval_deadline
from opsconsole.runs.idempotency import AlreadyRequested, form_token, submit_once
from opsconsole.runs.models import Run, Status
from opsconsole.runs.services import Refused

CHART_POINTS = 12
CHART_WIDTH, CHART_HEIGHT = 260, 60


def drill_chart(plan: DRPlan) -> dict:
    """RTO and RPO of the latest measured drills as bars, against the targets as lines (SVG)."""
    drills = list(
        plan.operations.filter(operation=Operation.DRILL, rto_seconds__isnull=False).order_by("-id")[:CHART_POINTS]
    )[::-1]
    if not drills:
        return {}
    targets = {"rto": plan.rto_minutes * 60, "rpo": plan.rpo_minutes * 60}
    top = max([*targets.values(), *(d.rto_seconds for d in drills), *((d.rpo_seconds or 0) for d in drills)]) or 1
    step = CHART_WIDTH / len(drills)
    bar = max(step / 2 - 2, 1)

    def y(seconds: float) -> float:
        return round(CHART_HEIGHT - seconds / top * (CHART_HEIGHT - 4), 1)

    bars = []
    for index, drill in enumerate(drills):
        for offset, label, value in ((0, "RTO", drill.rto_seconds), (bar + 1, "RPO", drill.rpo_seconds or 0)):
            bars.append(
                {
                    "x": round(index * step + 1 + offset, 1),
                    "y": y(value),
                    "w": bar,
                    "h": round(CHART_HEIGHT - y(value), 1),
                    "kind": label.lower(),
                    "title": f"run #{drill.run_id} {label} {round(value)}s",
                }
            )
    return {
        "bars": bars,
        "rto_y": y(targets["rto"]),
        "rpo_y": y(targets["rpo"]),
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
    }


@login_required
@require_GET
def dr_page(request):
    require(request, Action.VIEW)
    environments = list(visible_environments(request.user))
    plans = list(DRPlan.objects.filter(environment__in=environments).select_related("environment"))
    cards = []
    for plan in plans:
        operations = list(plan.operations.select_related("run").order_by("-id")[:15])
        can_dr = allowed(request.user, Action.DR, plan.environment)
        active = next((op for op in operations if op.run.is_active), None)
        cards.append(
            {
                "plan": plan,
                "check": plan.checks.first(),
                "operations": operations,
                "pending": [
                    (op, approval_deadline(op.run)) for op in operations if op.run.status == Status.AWAITING_APPROVAL
                ],
                "active": active,
                "waiting": services.lock_wait_note(active.run) if active and active.run.status == Status.QUEUED else "",
                "can_dr": can_dr,
                "failed_over": plan.active_site == Site.DR,
                "chart": drill_chart(plan),
                "failover_cooldown": services.cooldown_until(plan, Operation.FAILOVER),
                "resumable": {op.pk for op in operations if can_dr and op.can_resume()},
            }
        )
    without_plan = [env for env in environments if env.pk not in {p.environment_id for p in plans}]
    return render(request, "dr/index.html", {"cards": cards, "without_plan": without_plan})


def _plan(request, name: str) -> DRPlan:
    # The environment first: whether a plan exists must not tell an environment out of reach apart
    # from a name no environment has.
    environment = environment_for_page(request, name, Action.VIEW)
    return get_object_or_404(DRPlan.objects.select_related("environment"), environment=environment)


@login_required
@sudo_required
@require_http_methods(["GET", "POST"])
def request_operation(request, name: str, operation: str):
    """The guarded button's form: a reason and the typed environment name, after re-authentication."""
    plan = _plan(request, name)
    require(request, Action.DR, plan.environment)
    if request.method == "POST":
        reason, typed_name = request.POST.get("reason", ""), request.POST.get("confirm", "")
        try:
            # The form's one-time token: sent twice, it makes one request and shows it.
            run = submit_once(
                request, lambda: services.request(plan, request.user, operation, reason=reason, typed_name=typed_name)
            )
        except AlreadyRequested as done:
            messages.info(request, str(done))
            return redirect("run", run_id=done.run_id)
        except Refused as exc:
            services.record_refusal(plan, request.user, operation, exc)
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Requested; another DR operator or an admin must approve run #{run.pk}.")
            return redirect("run", run_id=run.pk)
    context = {
        "plan": plan,
        "operation": operation,
        "label": dict(Operation.choices)[operation],
        "request_token": form_token(),
    }
    return render(request, "dr/request.html", context)


@login_required
@sudo_required  # as the API asks of a browser session: a vote on a failover is as dangerous as its request
@require_POST
def decide(request, name: str, run_id: int):
    plan = _plan(request, name)
    run = get_object_or_404(Run, pk=run_id, environment=plan.environment, kind__in=RUN_KINDS.values())
    try:
        services.decide(run, request.user, request.POST.get("decision", ""), request.POST.get("comment", ""))
    except Refused as exc:
        services.record_refusal(plan, request.user, run.kind.split(".", 1)[1], exc)
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Your decision on run #{run.pk} is recorded.")
    return redirect("dr")


@login_required
@sudo_required
@require_POST
def resume(request, name: str, run_id: int):
    plan = _plan(request, name)
    operation = get_object_or_404(DROperation, plan=plan, run_id=run_id)
    try:
        run = services.resume(operation, request.user)
    except Refused as exc:
        messages.error(request, str(exc))
        return redirect("dr")
    return redirect("run", run_id=run.pk)


@login_required
@require_POST
def check_now(request, name: str):
    plan = _plan(request, name)
    require(request, Action.DR, plan.environment)
    check = readiness.check(plan, requested_by=request.user.get_username(), plan_terraform=False)
    record(
        "dr.readiness.checked",
        target=f"dr_plan:{plan.pk}",
        environment=plan.environment.name,
        details={"ok": check.ok, "failed": [item["name"] for item in check.items if not item["ok"]]},
    )
    if check.ok:
        messages.success(request, f"{plan.environment} is ready to fail over.")
    else:
        messages.error(request, f"{plan.environment} is not ready: see the checklist.")
    return redirect("dr")
