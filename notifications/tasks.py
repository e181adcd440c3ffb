"""Queue entry points: one delivery attempt (Celery and RQ call the same function), and the
periodic sweep that sends the apps' notices (an overdue backup) and re-sends deliveries whose
message was lost."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from notifications.delivery import DELIVER_TASK, deliver, enqueue, notify
from notifications.models import Delivery, DeliveryStatus
from opsconsole.notices import current_notices

logger = logging.getLogger(__name__)

LOST_AFTER = timedelta(minutes=10)


@shared_task(name=DELIVER_TASK, acks_late=True, ignore_result=True)
def deliver_task(delivery_id: int) -> str:
    return deliver(delivery_id)


def deliver_rq(delivery_id: int) -> str:
    return deliver(delivery_id)


@shared_task(name="notifications.tasks.sweep", ignore_result=True)
def sweep() -> dict:
    return {"notices": send_notices(), "resent": resend_lost()}


def send_notices(now=None) -> list[int]:
    """Deliver the notices the apps find now (opsconsole/notices.py: an overdue backup), each
    episode once: until the state changes (a newer backup), the same episode is not sent again."""
    now = now or timezone.now()
    notified = []
    for notice in current_notices(now):
        if Delivery.objects.filter(event=notice.event, facts__episode=notice.episode).exists():
            continue
        notified += notify(notice.event, notice.environment, **notice.facts, episode=notice.episode)
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
