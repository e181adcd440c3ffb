"""Scheduled entry points: each policy's crontab task, and the periodic retention and
verification sweeps. Celery and RQ call the same functions."""

from __future__ import annotations

import logging

from celery import shared_task

from backups.models import Backup, BackupPolicy, Kind
from opsconsole.environments.models import Environment
from opsconsole.runs.models import ACTIVE, Run
from opsconsole.runs.services import Refused, launch

logger = logging.getLogger(__name__)


@shared_task(name="backups.tasks.run_policy", ignore_result=True)
def run_policy(policy_id: int) -> int | None:
    """Start the policy's backup run, unless it is disabled or its previous run is still going."""
    from backups import services

    policy = BackupPolicy.objects.select_related("environment").filter(pk=policy_id).first()
    if policy is None or not policy.enabled:
        return None
    if services.active_run(policy) is not None:
        logger.warning("Backup policy %s: the previous run is still active; skipping this one.", policy)
        return None
    try:
        return services.request_backup(policy, None, scheduled=True).pk
    except Refused as exc:
        logger.error("Backup policy %s could not start: %s", policy, exc)
        return None


def _sweep(kind: str, environments) -> list[int]:
    started = []
    for environment in environments:
        if Run.objects.filter(kind=kind, environment=environment, status__in=ACTIVE).exists():
            continue
        try:
            started.append(launch(kind, environment=environment, check_permission=False).pk)
        except Refused as exc:
            logger.error("%s in %s could not start: %s", kind, environment, exc)
    return started


@shared_task(name="backups.tasks.apply_retention", ignore_result=True)
def apply_retention() -> list[int]:
    return _sweep("backups.retention", Environment.objects.filter(backup_policies__isnull=False).distinct())


@shared_task(name="backups.tasks.verify_newest", ignore_result=True)
def verify_newest() -> list[int]:
    ids = Backup.objects.available().filter(kind=Kind.PG_DUMP).values_list("environment_id", flat=True).distinct()
    return _sweep("backups.verify", Environment.objects.filter(pk__in=set(ids)))
