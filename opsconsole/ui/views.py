"""Console pages: home, runs and their live log, sign-in, re-authentication, API tokens, health."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from opsconsole.access.forms import ApiTokenForm, ThrottledAuthenticationForm
from opsconsole.access.models import Action, ApiToken
from opsconsole.access.permissions import allowed, principal_of, require, visible_environment_ids
from opsconsole.access.sudo import confirm_password, render_sudo_page, safe_next, sudo_required
from opsconsole.access.throttle import login_succeeded
from opsconsole.audit.log import record
from opsconsole.clientip import client_ip
from opsconsole.environments.models import Environment
from opsconsole.runs.dispatch import QueueUnavailable, check_queue
from opsconsole.runs.models import ACTIVE, TERMINAL, Run, Status
from opsconsole.runs.registry import REGISTRY
from opsconsole.runs.services import Refused, cancel, launch
from opsconsole.ui.pagination import keyset_page, parse_int

EVENTS_PER_FETCH = 2000
# Opening a run shows at most its last TAIL_LINES lines; "Show earlier lines" fetches the ones
# before, TAIL_LINES at a time. A finished 20,000-line log opens at once instead of fetching and
# laying out every line first.
TAIL_LINES = 1000


class LoginView(auth_views.LoginView):
    template_name = "ui/login.html"
    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        # The form counted this attempt before checking the password (access/throttle.py); a
        # right password is not a failure, so it is given back.
        login_succeeded(form.cleaned_data["username"], client_ip(self.request))
        return super().form_valid(form)


def visible_runs(request):
    runs = Run.objects.select_related("environment")
    env_ids = visible_environment_ids(principal_of(request))
    if env_ids is not None:
        runs = runs.filter(environment_id__in=env_ids)
    return runs


def visible_run(request, run_id: int) -> Run:
    run = get_object_or_404(Run.objects.select_related("environment", "lock"), pk=run_id)
    require(request, Action.VIEW, run.environment)
    return run


@login_required
def home(request):
    return redirect("environments")


@login_required
@require_GET
def runs(request):
    runs = visible_runs(request)
    filters = {name: request.GET.get(name, "").strip()[:60] for name in ("kind", "status", "environment")}
    if filters["kind"]:
        runs = runs.filter(kind=filters["kind"])
    if filters["status"] == "active":
        runs = runs.filter(status__in=ACTIVE)
    elif filters["status"] == "ended":
        runs = runs.filter(status__in=TERMINAL)
    elif filters["status"]:
        runs = runs.filter(status=filters["status"])
    if filters["environment"]:
        runs = runs.filter(environment__name=filters["environment"])
    page = keyset_page(runs, "id", parse_int(request.GET.get("before")))
    context = {
        "page": page,
        "filters": filters,
        "kinds": sorted(REGISTRY.values(), key=lambda kind: kind.label),
        "statuses": Status.choices,
        "environments": Environment.objects.values_list("name", flat=True),
        "can_start_selftest": allowed(request.user, Action.RUN),
    }
    return render(request, "ui/runs.html", context)


@login_required
@require_POST
def start_selftest(request):
    params = {"lines": request.POST.get("lines", "20"), "delay_ms": request.POST.get("delay_ms", "100")}
    try:
        run = launch("maintenance.selftest", principal=request.user, params=params)
    except Refused as exc:
        messages.error(request, str(exc))
        return redirect("runs")
    return redirect("run", run_id=run.pk)


@login_required
@require_GET
def run_detail(request, run_id: int):
    run = visible_run(request, run_id)
    last_seq = run.events.order_by("-seq").values_list("seq", flat=True).first() or 0
    start = max(0, last_seq - TAIL_LINES)  # the tail: the lines after `start`
    context = _live_log_context(request, run, start)
    context["earlier"] = _earlier(context["events"][0].seq if start and context["events"] else None)
    return render(request, "ui/run_detail.html", context)


@login_required
@require_GET
def run_events(request, run_id: int):
    """The live-log fragment: events after `after`, a status update and the next poller; or,
    with `before`, the lines before it (the "Show earlier lines" link)."""
    run = visible_run(request, run_id)
    before = parse_int(request.GET.get("before"))
    if before is not None:
        events = list(run.events.filter(seq__lt=before, seq__gte=before - TAIL_LINES).order_by("seq"))
        earlier = _earlier(events[0].seq if events and events[0].seq > 1 else None)
        return render(request, "ui/_earlier_lines.html", {"run": run, "events": events, "earlier": earlier})
    after = parse_int(request.GET.get("after")) or 0
    return render(request, "ui/_run_events.html", _live_log_context(request, run, after))


def _earlier(first_shown_seq: int | None) -> dict | None:
    """What the "Show earlier lines" link says and asks for; None when the first line is shown."""
    if not first_shown_seq or first_shown_seq <= 1:
        return None
    hidden = first_shown_seq - 1
    return {"before": first_shown_seq, "hidden": hidden, "next": min(hidden, TAIL_LINES)}


def _live_log_context(request, run: Run, after: int) -> dict:
    events = list(run.events_after(after, EVENTS_PER_FETCH))
    kind = REGISTRY.get(run.kind)
    return {
        "run": run,
        "events": events,
        "after": events[-1].seq if events else after,
        "more_pending": len(events) == EVENTS_PER_FETCH,
        "can_cancel": kind is not None and allowed(request.user, kind.action, run.environment),
    }


@login_required
@require_POST
def run_cancel(request, run_id: int):
    run = visible_run(request, run_id)
    try:
        cancel(run, request.user)
        messages.success(request, f"Cancel requested for run #{run.pk}.")
    except Refused as exc:
        messages.error(request, str(exc))
    return redirect("run", run_id=run.pk)


@login_required
def sudo(request):
    """Asks for the password again before a dangerous action (see opsconsole.access.sudo)."""
    next_url = safe_next(request)
    error = ""
    if request.method == "POST":
        error = confirm_password(request, request.POST.get("password", ""))
        if not error:
            return redirect(next_url)
    return render_sudo_page(request, next_url, error)


def _tokens_page(request, form: ApiTokenForm):
    context = {
        "tokens": ApiToken.objects.prefetch_related("environments"),
        "form": form,
        "new_token": request.session.pop("new_token", None),
    }
    return render(request, "ui/tokens.html", context)


@login_required
def tokens(request):
    if not allowed(request.user, Action.ADMIN):
        raise PermissionDenied("Only admins manage API tokens.")
    return _tokens_page(request, ApiTokenForm())


@login_required
@require_POST
@sudo_required
def token_create(request):
    if not allowed(request.user, Action.ADMIN):
        raise PermissionDenied("Only admins manage API tokens.")
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _tokens_page(request, form)  # the form as typed, with what to fix; nothing created
    chosen = form.cleaned_data
    envs = list(chosen["environments"])
    token, raw = ApiToken.issue(
        chosen["name"],
        chosen["scopes"],
        envs,
        created_by=request.user,
        all_environments=chosen["all_environments"],
        lifetime_days=chosen["lifetime_days"],
    )
    record(
        "access.token.created",
        target=f"token:{token.pk}",
        details={
            "name": token.name,
            "scopes": chosen["scopes"],
            "all_environments": token.all_environments,
            "environments": [env.name for env in envs],
            "lifetime_days": chosen["lifetime_days"],
            "expires_at": token.expires_at.isoformat(),
        },
    )
    request.session["new_token"] = raw  # shown once on the next page, then gone
    return redirect("tokens")


@login_required
@require_POST
def token_revoke(request, token_id: int):
    if not allowed(request.user, Action.ADMIN):
        raise PermissionDenied("Only admins manage API tokens.")
    token = get_object_or_404(ApiToken, pk=token_id)
    if token.is_active:
        token.revoke()
        record("access.token.revoked", target=f"token:{token.pk}", details={"name": token.name})
        messages.success(request, f"Token {token.name} revoked.")
    return redirect("tokens")


def healthz(request):
    return HttpResponse("ok\n", content_type="text/plain")


def readyz(request):
    problems = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        problems["database"] = type(exc).__name__
    try:
        check_queue()
    except QueueUnavailable as exc:
        problems["broker"] = str(exc.__cause__.__class__.__name__)
    if problems:
        failing = ", ".join(sorted(problems))
        return JsonResponse(
            {"status": "unavailable", "failing": problems, "message": f"not ready: {failing}"}, status=503
        )
    return JsonResponse({"status": "ok", "queue": settings.OPSCONSOLE_QUEUE})
