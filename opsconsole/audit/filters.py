"""Filtering the audit log from query-string parameters (page, CSV and JSON export share it)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from opsconsole.audit.models import AuditEvent, Outcome

FILTER_FIELDS = ("actor", "action", "environment", "outcome", "since", "until")


def _parse_date(value: str, name: str, errors: list[str]) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        errors.append(f"{name}: expected a date like 2026-11-26, got {value[:40]!r}.")
        return None


def filter_events(params) -> tuple:
    """Return (queryset, cleaned filters, errors). A bad filter is reported, not guessed at."""
    cleaned = {name: (params.get(name) or "").strip()[:100] for name in FILTER_FIELDS}
    errors: list[str] = []
    events = AuditEvent.objects.all()
    if cleaned["actor"]:
        events = events.filter(actor_name=cleaned["actor"])
    if cleaned["action"]:
        events = events.filter(action__startswith=cleaned["action"])
    if cleaned["environment"]:
        events = events.filter(environment=cleaned["environment"])
    if cleaned["outcome"]:
        if cleaned["outcome"] in Outcome.values:
            events = events.filter(outcome=cleaned["outcome"])
        else:
            errors.append(f"outcome: expected one of {', '.join(Outcome.values)}.")
    tz = timezone.get_current_timezone()
    since = _parse_date(cleaned["since"], "since", errors)
    until = _parse_date(cleaned["until"], "until", errors)
    if since:
        events = events.filter(at__gte=dt.datetime.combine(since, dt.time.min, tzinfo=tz))
    if until and until < dt.date.max:  # the last representable day has no "day after"; nothing is later
        events = events.filter(at__lt=dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, tzinfo=tz))
    return events, cleaned, errors
