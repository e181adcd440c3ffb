"""Queue entry points: one delivery attempt (Celery and RQ call the same function), and the
periodic sweep that reports overdue backups and re-sends deliveries whose message was lost."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from notifications.delivery import deliver, enqueue, notify
from notifications.models import Delivery, DeliveryStatus

logger = logging.getLogger(__name__)

LOST_AFTER = timedelta(minutes=10)


@shared_task(name="notifications.tasks.deliver", acks_late=True, ignore_result=True)
def deliver_task(delivery_id: int) -> str:
    return deliver(delivery_id)


def deliver_rq(delivery_id: int) -> str:
    return deliver(delivery_id)


@shared_task(name="notifications.tasks.sweep", ignore_result=True)
def sweep() -> dict:
    return {"overdue": check_overdue_backups(), "resent": resend_lost()}


def check_overdue_backups(now=None) -> list[int]:
    """Notify once per policy whose newest good backup is older than its RPO (or that has none
    and is older than its RPO itself). Once: until a newer backup arrives, the same episode is
    not reported again."""
    from backups.models import BackupPolicy, newest_good

    now = now or timezone.now()
    notified = []
    for policy in BackupPolicy.objects.filter(enabled=True).select_related("environment"):
        newest = newest_good(policy.backups)
        since = newest.finished_at if newest else policy.created_at
        age = now - since
        if age <= policy.rpo:
            continue
        episode = f"backup-overdue:{policy.pk}:{newest.pk if newest else 0}"
        if Delivery.objects.filter(event="backup.overdue", facts__episode=episode).exists():
            continue
        minutes = int(age.total_seconds() // 60)
        ago = f"{minutes // 60}h {minutes % 60:02d}m ago"
        notified += notify(
            "backup.overdue",
            policy.environment,
            policy=policy.pk,
            policy_name=policy.name,
            kind=f"backups.{policy.kind}",
            newest_backup_at=newest.finished_at if newest else None,
            age=f"the newest finished {ago}" if newest else f"no backup since the policy was created {ago}",
            rpo_minutes=policy.rpo_minutes,
            episode=episode,
        )
    return notified


def resend_lost(now=None) -> list[int]:
    """Pending deliveries whose next attempt is long past lost their queue message (a broker that
    lost its data, a worker killed mid-attempt); claiming is conditional, so a re-send is safe.
    A sending delivery's next_attempt_at is when it was claimed, so one claimed late by a busy
    queue is not taken for lost while its attempt is still running."""
    now = now or timezone.now()
    Delivery.objects.filter(status=DeliveryStatus.SENDING, next_attempt_at__lt=now - LOST_AFTER).update(
        status=DeliveryStatus.PENDING
    )
    ids = list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lt=now - LOST_AFTER).values_list(
            "pk", flat=True
        )[:100]
    )
    for delivery_id in ids:
        enqueue(delivery_id)
    return ids
