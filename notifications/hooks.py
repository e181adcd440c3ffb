"""Where events come from: the runs engine's signals (a run created awaiting approval, a run
started, a run's status changed), mapped to notification events by the run's kind and outcome.
The apps that own the runs need no change to be notified about."""

from __future__ import annotations

import logging

from django.db import transaction
from django.urls import reverse

from notifications import conf
from notifications.delivery import notify
from opsconsole.runs.models import TERMINAL, Run, Status
from opsconsole.runs.registry import REGISTRY

logger = logging.getLogger(__name__)

DEPLOY_KINDS = {"deployments.deploy", "deployments.rollback"}
BACKUP_KINDS = {"backups.pg_dump", "backups.rds_snapshot", "backups.redis_snapshot"}
FAILED = {Status.FAILED, Status.ERRORED}


def event_for(kind: str, previous: str | None, status: str, result: dict | None = None) -> str | None:
    """The notification event for a run of `kind` going from `previous` to `status`, if any."""
    result = result or {}
    if previous is None:  # created
        if status != Status.AWAITING_APPROVAL:
            return None
        return "dr.requested" if kind.startswith("dr.") else "approval.requested"
    if kind.startswith("dr."):
        if previous == Status.AWAITING_APPROVAL:
            return "dr.approved" if status == Status.QUEUED else None
        return "dr.completed" if status in TERMINAL else None
    if kind in DEPLOY_KINDS:
        if status == Status.RUNNING:
            return "deploy.started"
        if status == Status.SUCCEEDED:
            return "deploy.rolled_back" if kind == "deployments.rollback" else "deploy.succeeded"
        if status == Status.ROLLED_BACK:
            return "deploy.rolled_back"
        return "deploy.failed" if status in FAILED else None
    if kind in BACKUP_KINDS and status in FAILED:
        return "backup.failed"
    if kind == "backups.verify" and status in FAILED:
        return "restore.verify_failed"
    if kind == "terraform.drift" and status == Status.SUCCEEDED and result.get("has_changes"):
        return "drift.detected"
    return None


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
        return notify(event, run.environment, **run_facts(run))
    except Exception:
        logger.exception("notification %s for run %s failed", event, run_id)
        return []


def run_facts(run: Run) -> dict:
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
    if run.kind.startswith("dr."):
        facts["operation"] = params.get("operation", run.kind.split(".", 1)[1])
        facts["reason"] = params.get("reason", "")
        operation = getattr(run, "dr_operation", None)
        if operation is not None and operation.rto_seconds is not None:
            facts["rto_seconds"] = round(operation.rto_seconds, 1)
    if run.kind in BACKUP_KINDS:
        facts["policy"] = params.get("policy")
        facts["policy_name"] = params.get("policy_name", "")
    if run.kind == "terraform.drift":
        summary = (run.result or {}).get("summary") or {}
        facts["changes"] = sum(int(summary.get(key) or 0) for key in ("add", "change", "destroy"))
    return facts
