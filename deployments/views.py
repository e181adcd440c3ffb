"""Deployment pages: the environment page (history, deploy, rollback, lock, approvals) and releases.

The deploy and rollback forms carry a one-time token (opsconsole/runs/idempotency.py): sending one
twice (a double click, a resubmitted page) makes one run and shows it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, OuterRef, Q, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from deployments import ecr, services
from deployments.models import Deployment, Release
from opsconsole.access.models import Action
from opsconsole.access.permissions import allowed, require
from opsconsole.environments import services as environments
from opsconsole.environments.models import Environment
from opsconsole.runs.idempotency import AlreadyRequested, form_token, submit_once
from opsconsole.runs.models import Decision, Status
from opsconsole.runs.services import Refused
from opsconsole.ui.pagination import keyset_page, parse_int

HISTORY_FILTERS = ("status", "user", "release")


@login_required
@require_GET
def dashboard(request):
    """Every environment the user may see: live release, last deploy, lock, approvals, colour."""
    last = Deployment.objects.filter(environment=OuterRef("pk")).order_by("-id").values("id")[:1]
    envs = list(
        environments.visible_environments(request.user)
        .select_related("lock", "live_release")
        .annotate(
            last_deployment_id=Subquery(last),
            pending=Count("runs", filter=Q(runs__status=Status.AWAITING_APPROVAL), distinct=True),
        )
    )
    deployments = Deployment.objects.select_related("run", "release").in_bulk(
        [env.last_deployment_id for env in envs if env.last_deployment_id]
    )
    rows = [(env, deployments.get(env.last_deployment_id)) for env in envs]
    return render(request, "deployments/dashboard.html", {"rows": rows})


def _history(environment: Environment, params) -> tuple:
    history = Deployment.objects.filter(environment=environment).select_related("run", "release")
    filters = {name: (params.get(name) or "").strip()[:100] for name in HISTORY_FILTERS}
    if filters["status"]:
        history = history.filter(run__status=filters["status"])
    if filters["user"]:
        history = history.filter(run__requested_by_name=filters["user"])
    if filters["release"]:
        history = history.filter(release__tag=filters["release"])
    return keyset_page(history, "id", parse_int(params.get("before")), size=25), filters


@login_required
@require_GET
def environment_detail(request, name: str):
    environment = environments.environment_for_page(request, name, Action.VIEW)
    page, filters = _history(environment, request.GET)
    pending = environment.runs.filter(status=Status.AWAITING_APPROVAL, kind__in=services.DEPLOY_KINDS).select_related(
        "deployment__release"
    )
    context = {
        "environment": environment,
        "page": page,
        "filters": filters,
        "statuses": Status.choices,
        "pending": pending.prefetch_related("approvals__user"),
        "releases": Release.objects.all()[:50],
        "freeze": environment.active_freeze(),
        "can_deploy": allowed(request.user, Action.DEPLOY, environment),
        "can_approve": allowed(request.user, Action.APPROVE, environment),
        "can_override": allowed(request.user, Action.ADMIN, environment),
        "decisions": Decision.choices,
        "deploy_token": form_token(),
        "rollback_token": form_token(),
    }
    return render(request, "deployments/environment.html", context)


def _request_deployment(request, name: str, action, problem: str, confirmed: bool):
    """Deploy and rollback share a form: a release, maybe a freeze override; on to the run page."""
    environment = environments.environment_for_page(request, name, Action.VIEW)
    release = Release.objects.filter(pk=parse_int(request.POST.get("release"))).first()
    if release is None or not confirmed:
        messages.error(request, problem)
        return redirect("environment", name=name)
    reason = request.POST.get("override_reason", "")
    try:
        run = submit_once(request, lambda: action(environment, release, request.user, override_reason=reason))
    except AlreadyRequested as done:
        messages.info(request, str(done))
        return redirect("run", run_id=done.run_id)
    except Refused as exc:
        messages.error(request, str(exc))
        return redirect("environment", name=name)
    return redirect("run", run_id=run.pk)


@login_required
@require_POST
def deploy(request, name: str):
    return _request_deployment(request, name, services.request_deploy, "Choose a release to deploy.", True)


@login_required
@require_POST
def rollback(request, name: str):
    confirmed = request.POST.get("confirm") == "yes"
    return _request_deployment(
        request, name, services.request_rollback, "Confirm the rollback by ticking the box.", confirmed
    )


@login_required
@require_POST
def lock(request, name: str):
    environment = environments.environment_for_page(request, name, Action.VIEW)
    try:
        if request.POST.get("action") == "unlock":
            environments.unlock(environment, request.user)
            messages.success(request, f"{environment} unlocked.")
        else:
            environments.lock(environment, request.user, request.POST.get("reason", ""))
            messages.success(request, f"{environment} locked.")
    except Refused as exc:
        messages.error(request, str(exc))
    return redirect("environment", name=name)


@login_required
@require_POST
def decide(request, name: str, run_id: int):
    environment = environments.environment_for_page(request, name, Action.VIEW)
    run = get_object_or_404(environment.runs, pk=run_id)
    try:
        services.decide(run, request.user, request.POST.get("decision", ""), request.POST.get("comment", ""))
        messages.success(request, f"Your decision on run #{run.pk} is recorded.")
    except Refused as exc:
        messages.error(request, str(exc))
    return redirect("environment", name=name)


@login_required
@require_GET
def releases(request):
    require(request, Action.VIEW)
    page = keyset_page(Release.objects.all(), "id", parse_int(request.GET.get("before")))
    return render(
        request,
        "deployments/releases.html",
        {
            "page": page,
            "can_sync": allowed(request.user, Action.DEPLOY),
            "repositories": ecr.configured(),
        },
    )


@login_required
@require_POST
def sync_releases(request):
    require(request, Action.DEPLOY)
    try:
        created = ecr.sync(request.user)
    except ecr.SyncFailed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{len(created)} new release(s) registered from ECR.")
    return redirect("releases")


@login_required
@require_GET
def compare(request):
    require(request, Action.VIEW)
    base = Release.objects.filter(pk=parse_int(request.GET.get("base"))).first()
    head = Release.objects.filter(pk=parse_int(request.GET.get("head"))).first()
    if base is None or head is None:
        messages.error(request, "Choose two releases to compare.")
        return redirect("releases")
    task_definitions = {
        release.pk: Deployment.objects.filter(release=release)
        .exclude(task_definition_arn="")
        .values_list("task_definition_arn", flat=True)
        .first()
        for release in (base, head)
    }
    return render(
        request,
        "deployments/compare.html",
        {
            "base": base,
            "head": head,
            "commit_range": commit_range_url(base, head),
            "base_task_definition": task_definitions[base.pk],
            "head_task_definition": task_definitions[head.pk],
        },
    )


def commit_range_url(base: Release, head: Release) -> str:
    """A GitHub-style compare link when both commit URLs point into the same repository."""
    marker = "/commit/"
    if base.git_sha and head.git_sha and marker in head.commit_url:
        return f"{head.commit_url.split(marker)[0]}/compare/{base.git_sha}...{head.git_sha}"
    return ""
