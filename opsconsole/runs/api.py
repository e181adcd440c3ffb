"""JSON API for runs: list, start, show, stream events, cancel. A start naming an environment the
caller may not see is answered exactly as one naming no environment (opsconsole.api.environment_for)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from opsconsole.access.models import Action
from opsconsole.access.permissions import principal_of, require, visible_environment_ids
from opsconsole.api import (
    BadRequest,
    Conflict,
    Unavailable,
    api_endpoint,
    environment_for,
    error,
    json_body,
    query_before,
    query_choice,
    query_int,
    refusal,
)
from opsconsole.runs.idempotency import idempotent
from opsconsole.runs.models import Run, Status
from opsconsole.runs.registry import UnknownRunKind, get_kind
from opsconsole.runs.services import NotPermitted, Refused, cancel, launch
from opsconsole.ui.pagination import keyset_page

# Refusals of launch() the state causes (409); the rest are bad input (400), the queue down 503.
CONFLICT_CODES = frozenset({"duplicate"})


def run_json(run: Run) -> dict:
    return {
        "id": run.pk,
        "kind": run.kind,
        "status": run.status,
        "environment": run.environment.name if run.environment_id else None,
        "params": run.params,
        "result": run.result,
        "error": run.error,
        "requested_by": run.requested_by_name,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "cancel_requested": run.cancel_requested,
        "terminal": run.is_terminal,
    }


def refusal_answer(exc: Refused, conflict_codes: frozenset[str] | set[str] = frozenset()) -> JsonResponse:
    """The API's answer to a refusal, as opsconsole.api.refusal() decides its status, plus the run it
    points at when there is one (a duplicate: `run`, the id, and `url`, where to follow it)."""
    answer = refusal(exc, conflict_codes)
    status = 503 if isinstance(answer, Unavailable) else 409 if isinstance(answer, Conflict) else 400
    body = {"error": str(answer), "code": answer.code}
    if exc.run is not None:
        body.update(run=exc.run.pk, url=reverse("api_run", kwargs={"run_id": exc.run.pk}))
    return JsonResponse(body, status=status)


def _action_of(kind_name: str) -> str:
    """The permission a run of this kind needs; to view, for a kind that does not exist (launch()
    then says so, to whoever may see the environment)."""
    try:
        return get_kind(kind_name).action
    except UnknownRunKind:
        return Action.VIEW


def _visible(request, run_id: int) -> Run:
    run = get_object_or_404(Run.objects.select_related("environment"), pk=run_id)
    require(request, Action.VIEW, run.environment)
    return run


@csrf_exempt  # token requests carry no cookie; session requests are checked in the view
@api_endpoint("GET", "POST")
@idempotent
def runs(request):
    principal = principal_of(request)
    if request.method == "POST":
        enforce_csrf_for_session(request)
        body = json_body(request)
        kind, name, params = body.get("kind", ""), body.get("environment", ""), body.get("params", {})
        if not isinstance(kind, str):
            raise BadRequest("kind must be a string: the name of a run kind.", "invalid")
        if not isinstance(name, str):
            raise BadRequest("environment must be a string: the environment's name.", "invalid")
        if not isinstance(params, dict):
            raise BadRequest("params must be a JSON object.", "invalid")
        # Before the kind's own checks: one the caller may not see answers as a name none has.
        environment = environment_for(request, name, _action_of(kind)) if name else None
        try:
            run = launch(kind, principal=principal, environment=environment, params=params)
        except NotPermitted as exc:
            raise PermissionDenied(str(exc)) from None
        except Refused as exc:
            return refusal_answer(exc, CONFLICT_CODES)  # a duplicate names its run: "run", "url"
        return JsonResponse(run_json(run), status=201)

    require(request, Action.VIEW)
    runs = Run.objects.select_related("environment")
    env_ids = visible_environment_ids(principal)
    if env_ids is not None:
        runs = runs.filter(environment_id__in=env_ids)
    status = query_choice(request, "status", Status.values)
    if status is not None:
        runs = runs.filter(status=status)
    page = keyset_page(runs, "id", query_before(request))
    return JsonResponse({"runs": [run_json(run) for run in page.items], "next_before": page.next_before})


@api_endpoint("GET")
def run_detail(request, run_id: int):
    return JsonResponse(run_json(_visible(request, run_id)))


@api_endpoint("GET")
def run_events(request, run_id: int):
    run = _visible(request, run_id)
    after = query_int(request, "after", 0, "the sequence number of the last event already read") or 0
    events = [
        {"seq": e.seq, "at": e.at.isoformat(), "level": e.level, "message": e.message, "data": e.data}
        for e in run.events_after(after, 2000)
    ]
    return JsonResponse({"status": run.status, "terminal": run.is_terminal, "events": events})


@csrf_exempt
@api_endpoint("POST")
def run_cancel(request, run_id: int):
    enforce_csrf_for_session(request)
    run = _visible(request, run_id)
    try:
        cancel(run, principal_of(request))
    except NotPermitted as exc:
        raise PermissionDenied(str(exc)) from None
    except Refused as exc:
        return error(409, str(exc), "already_ended")
    run.refresh_from_db()
    return JsonResponse(run_json(run), status=202)


def enforce_csrf_for_session(request) -> None:
    """A browser session calling the API must present the CSRF token, like any form."""
    if request.api_token is not None:
        return
    from django.middleware.csrf import CsrfViewMiddleware

    reason = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
    if reason is not None:
        raise PermissionDenied("CSRF check failed.")
