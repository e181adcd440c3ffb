"""The audit page, its CSV and JSON export, and the chain check."""

from __future__ import annotations

import csv
import json
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from opsconsole.access.models import Action
from opsconsole.access.permissions import allowed, visible_environment_ids
from opsconsole.audit.filters import FILTER_FIELDS, filter_events
from opsconsole.audit.log import verify_chain
from opsconsole.audit.models import Outcome
from opsconsole.environments.models import Environment
from opsconsole.ui.pagination import keyset_page, parse_int

EXPORT_FIELDS = (
    "seq",
    "at",
    "actor_name",
    "action",
    "target",
    "environment",
    "ip",
    "user_agent",
    "request_id",
    "outcome",
    "details",
    "prev_hash",
    "hash",
)


def _visible_environment_names(user):
    env_ids = visible_environment_ids(user)
    environments = Environment.objects.all() if env_ids is None else Environment.objects.filter(pk__in=env_ids)
    return environments.values_list("name", flat=True)


def visible_events(request):
    """The filtered events this user may read: everything for a global role, else only the
    events of the environments they can view."""
    events, cleaned, errors = filter_events(request.GET)
    env_ids = visible_environment_ids(request.user)
    if env_ids is not None:
        names = Environment.objects.filter(pk__in=env_ids).values_list("name", flat=True)
        events = events.filter(environment__in=list(names))
    return events, cleaned, errors


@login_required
@require_GET
def audit_log(request):
    events, cleaned, errors = visible_events(request)
    page = keyset_page(events, "seq", parse_int(request.GET.get("before")))
    query = urlencode({name: value for name, value in cleaned.items() if value})
    context = {
        "page": page,
        "filters": cleaned,
        "errors": errors,
        "query": query,
        "outcomes": Outcome.choices,
        "environments": _visible_environment_names(request.user),
        "can_verify": allowed(request.user, Action.ADMIN),
    }
    return render(request, "audit/log.html", context)


def _rows(events):
    after = 0
    while True:
        batch = list(events.filter(seq__gt=after).order_by("seq")[:2000])
        if not batch:
            return
        yield from batch
        after = batch[-1].seq


class _Echo:
    def write(self, value):
        return value


def _export_value(event, field):
    value = getattr(event, field)
    if field == "at":
        return value.isoformat()
    if field == "details":
        return json.dumps(value, sort_keys=True)
    return "" if value is None else value


def _csv_safe(value):
    """Keep a spreadsheet from running a cell as a formula (CSV injection): prefix a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@login_required
@require_GET
def audit_export(request, fmt: str):
    events, _, errors = visible_events(request)
    if errors:
        # A bad filter is the user's mistake, not a permission problem: say what to fix.
        message = "Fix the filters before exporting: " + " ".join(errors)
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
    if fmt == "csv":
        writer = csv.writer(_Echo())
        header = [writer.writerow(EXPORT_FIELDS)]
        body = (writer.writerow([_csv_safe(_export_value(e, f)) for f in EXPORT_FIELDS]) for e in _rows(events))
        response = StreamingHttpResponse((line for part in (header, body) for line in part), content_type="text/csv")
    else:

        def lines():
            yield "[\n"
            first = True
            for event in _rows(events):
                item = {f: _export_value(event, f) for f in EXPORT_FIELDS}
                item["details"] = event.details
                yield ("" if first else ",\n") + json.dumps(item, sort_keys=True)
                first = False
            yield "\n]\n"

        response = StreamingHttpResponse(lines(), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="audit.{fmt}"'
    return response


@login_required
@require_GET
def audit_verify(request):
    if not allowed(request.user, Action.ADMIN):
        raise PermissionDenied("Only admins verify the audit chain.")
    report = verify_chain()
    return render(request, "audit/verify.html", {"report": report})


__all__ = ["audit_log", "audit_export", "audit_verify", "FILTER_FIELDS"]
