"""Where events come from: the runs engine's signals (a run created awaiting approval, a run
started, a run's status changed), mapped to notification events by the run's kind. Each kind says
which events its runs raise and what a message about them adds (`notifies` and `notify_facts` in
its @run_kind declaration); this module only asks the registry, and names no app's kinds."""

from __future__ import annotations

import logging

from django.db import transaction
from django.urls import reverse

from notifications import conf
from notifications.delivery import notify
from opsconsole.runs.context import current_writer
from opsconsole.runs.models import TERMINAL, Run, Status
from opsconsole.runs.registry import REGISTRY

logger = logging.getLogger(__name__)


def event_for(kind: str, previous: str | None, status: str, result: dict | None = None) -> str | None:
    """The notification event for a run of `kind` going from `previous` (None: just created) to
    `status`, if any: what the kind's `notifies` says. A run created queued raises nothing (its
    start may); one created awaiting approval asks for it with approval.requested, unless its kind
    names another event for that (DR operations do)."""
    if previous is None and status != Status.AWAITING_APPROVAL:
        return None
    declared = REGISTRY.get(kind)
    notifies = declared.notifies if declared is not None else None
    event = notifies(previous, status, result or {}) if notifies is not None else None
    if previous is None:
        return event or "approval.requested"
    return event


def run_created(sender, instance: Run, created: bool, raw: bool = False, **kwargs) -> None:
    if raw or not created or not instance.environment_id:
        return
    event = event_for(instance.kind, None, instance.status)
    if event:
        run_id = instance.pk
        transaction.on_commit(lambda: notify_run(event, run_id))


def run_status_changed(sender, run: Run, previous: str, status: str, **kwargs) -> None:
    if not run.environment_id:
        return
    event = event_for(run.kind, previous, status, run.result if status in TERMINAL else None)
    if event:
        notify_run(event, run.pk)


def run_link(run_id: int) -> str:
    return f"{conf.base_url()}{reverse('run', args=[run_id])}"


def notify_run(event: str, run_id: int) -> list[int]:
    try:
        run = Run.objects.select_related("environment").get(pk=run_id)
        facts = run_facts(run)
        writer = current_writer()
        if writer is not None and writer.run_id == run.pk:
            # Told by the run's own worker: a secret the job registered is masked in every fact,
            # those its kind adds included, as it is in the run's events and error.
            facts = writer.redact_data(facts)
        return notify(event, run.environment, **facts)
    except Exception:
        logger.exception("notification %s for run %s failed", event, run_id)
        return []


def run_facts(run: Run) -> dict:
    """What every message about a run says, then what its kind adds (`notify_facts`)."""
    params = run.params or {}
    kind = REGISTRY.get(run.kind)
    release = params.get("release") or {}
    facts = {
        "run": run.pk,
        "kind": run.kind,
        "kind_label": kind.label if kind else run.kind,
        "status": run.get_status_display().lower(),
        "outcome": run.status,
        "requested_by": run.requested_by_name or "system",
        "link": run_link(run.pk),
        "error": run.error[:300] if run.error else "",
        "release": release.get("tag", "") if isinstance(release, dict) else "",
    }
    if run.status == Status.AWAITING_APPROVAL:
        facts["approvals_required"] = run.environment.required_approvals
    if kind is not None and kind.notify_facts is not None:
        facts.update(kind.notify_facts(run))
    return facts
