"""The Infrastructure pages: every workspace's drift and last plan, one environment's plan diff
(grouped by action), its approvals and runs, and a read-only view of the Terraform code."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from infrastructure import conf, policy, services
from infrastructure.models import Plan, Workspace
from opsconsole.access.models import Action
from opsconsole.access.permissions import allowed
from opsconsole.environments.services import environment_for_page, visible_environments
from opsconsole.runs.models import Decision, Run, Status
from opsconsole.runs.services import Refused

KINDS = services.TERRAFORM_KINDS
ACTION_LABELS = {"create": "Create", "update": "Update in place", "replace": "Replace", "delete": "Destroy"}


@login_required
@require_GET
def overview(request):
    environments = visible_environments(request.user)
    workspaces = list(
        Workspace.objects.filter(environment__in=environments)
        .select_related("environment")
        .order_by("environment__tier", "environment__name")
    )
    rows = [(workspace, workspace.last_plan()) for workspace in workspaces]
    unconfigured = environments.exclude(pk__in=[w.environment_id for w in workspaces])
    return render(
        request,
        "infrastructure/overview.html",
        {"rows": rows, "unconfigured": unconfigured, "code": policy.read_code(conf.terraform_root())},
    )


def _grouped(plan: Plan | None) -> list[tuple[str, str, list[dict]]]:
    if plan is None:
        return []
    groups: dict[str, list[dict]] = {}
    for change in plan.changes.get("resource_changes", []):
        groups.setdefault(change["action"], []).append(change)
    order = [a for a in ACTION_LABELS if a in groups] + [a for a in groups if a not in ACTION_LABELS]
    return [(action, ACTION_LABELS.get(action, action), groups[action]) for action in order]


@login_required
@require_GET
def environment(request, name: str):
    env = environment_for_page(request, name, Action.VIEW)
    workspace = Workspace.objects.filter(environment=env).first()
    plan = workspace.last_plan() if workspace else None
    runs = Run.objects.filter(environment=env, kind__in=KINDS).order_by("-id")[:20]
    pending = (
        Run.objects.filter(environment=env, kind="terraform.apply", status=Status.AWAITING_APPROVAL)
        .prefetch_related("approvals__user")
        .order_by("id")
    )
    applies = plan.apply_runs().prefetch_related("approvals__user") if plan else []
    directory = conf.terraform_root() / (workspace.directory if workspace else "")
    context = {
        "environment": env,
        "workspace": workspace,
        "plan": plan,
        "groups": _grouped(plan),
        "stale": plan.staleness() if plan else "",
        "applies": applies,
        "pending": pending,
        "runs": runs,
        "code": policy.read_code(directory),
        "can_plan": allowed(request.user, Action.DEPLOY, env),
        "can_approve": allowed(request.user, Action.APPROVE, env),
        "decisions": Decision.choices,
    }
    return render(request, "infrastructure/environment.html", context)


def _back(request, exc: Refused, name: str):
    messages.error(request, str(exc))
    return redirect("infrastructure_environment", name=name)


@login_required
@require_POST
def plan(request, name: str):
    env = environment_for_page(request, name, Action.VIEW)
    try:
        run = services.request_plan(env, request.user)
    except Refused as exc:
        return _back(request, exc, name)
    return redirect("run", run_id=run.pk)


@login_required
@require_POST
def apply(request, name: str, run_id: int):
    env = environment_for_page(request, name, Action.VIEW)
    saved = (
        Plan.objects.select_related("run", "workspace__environment")
        .filter(run_id=run_id, workspace__environment=env)
        .first()
    )
    if saved is None:
        raise Http404("No such plan in this environment.")
    try:
        run = services.request_apply(saved, request.user)
    except Refused as exc:
        return _back(request, exc, name)
    messages.success(request, f"Apply requested as run #{run.pk}; another person must approve it.")
    return redirect("infrastructure_environment", name=name)


@login_required
@require_POST
def decide(request, name: str, run_id: int):
    env = environment_for_page(request, name, Action.VIEW)
    run = get_object_or_404(Run.objects.select_related("environment"), pk=run_id, environment=env)
    try:
        services.decide(run, request.user, request.POST.get("decision", ""), request.POST.get("comment", ""))
    except Refused as exc:
        return _back(request, exc, name)
    return redirect("run", run_id=run.pk)
