"""notify() records one Delivery per channel that wants the event and hands each to the queue;
deliver() is one attempt, run by a worker, which schedules the next one after a backoff.

notify() never raises into its caller and never sends anything itself: a slow or broken channel
cannot delay or fail the run (or the request) it reports on. The queue is the runs' own seam
(opsconsole.runs.dispatch.enqueue): Celery (a countdown), RQ (enqueue_in; the worker runs with its
scheduler) or, for the CLI and tests, `inline`, which sends from a thread of this process and so
still never blocks the caller. What a delivery looks like and how it is sent is its channel
kind's (notifications/channels/).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from notifications import conf, sending
from notifications.channels import CHANNEL_KINDS, UnknownChannelKind, channel_kind
from notifications.events import EVENTS
from notifications.models import Channel, Delivery, DeliveryAttempt, DeliveryStatus
from notifications.secrets import SecretUnavailable
from opsconsole.audit.log import mask_secrets
from opsconsole.runs import dispatch

logger = logging.getLogger(__name__)


def notify(event: str, environment, **facts) -> list[int]:
    """Tell every enabled channel of `environment` that wants `event`. Returns the delivery ids.

    Called from wherever things happen; inside a transaction the deliveries are queued when it
    commits (and vanish with it if it rolls back)."""
    try:
        # A savepoint: if recording fails, the caller's own transaction stays usable.
        with transaction.atomic():
            return _notify(event, environment, facts)
    except Exception:
        logger.exception("notification %s for %s could not be recorded", event, getattr(environment, "name", "?"))
        return []


def _notify(event_code: str, environment, facts: dict) -> list[int]:
    event = EVENTS[event_code]
    if environment is None:
        return []
    channels = [c for c in Channel.objects.filter(environment=environment, enabled=True) if c.wants(event_code)]
    if not channels:
        return []
    # What a JSONField can keep, and the values of secret-looking keys masked as in the audit log:
    # facts go into the stored delivery and every channel's payload.
    facts = mask_secrets(json.loads(json.dumps(facts, cls=DjangoJSONEncoder)))
    name = environment.name
    now = timezone.now()
    at = sending.utc_timestamp(now)
    summary = event.summary(name, facts)
    ids = []
    for channel in channels:
        kind = CHANNEL_KINDS.get(channel.kind)
        if kind is None:
            logger.error("%s: %s; nothing is sent to it.", channel, UnknownChannelKind(channel.kind))
            continue
        payload = kind.payload(event, name, facts, summary, at)
        delivery = Delivery.objects.create(
            channel=channel,
            channel_name=channel.name,
            channel_kind=channel.kind,
            environment=environment,
            event=event_code,
            summary=summary[:500],
            facts=facts,
            payload=payload,
            next_attempt_at=now,
            created_at=now,
        )
        ids.append(delivery.pk)
    transaction.on_commit(lambda: [enqueue(pk) for pk in ids])
    return ids


# --- The queue ---------------------------------------------------------------------------------

_inline_threads: set[threading.Thread] = set()
_inline_lock = threading.Lock()


# The queue entry points (notifications/tasks.py), named here so this module need not import them.
DELIVER_TASK = "notifications.tasks.deliver"
DELIVER_RQ = "notifications.tasks.deliver_rq"


def enqueue(delivery_id: int, delay: float = 0) -> None:
    """Hand one delivery to the worker, after `delay` seconds. Never raises."""
    try:
        dispatch.enqueue(
            DELIVER_TASK,
            delivery_id,
            rq_function=DELIVER_RQ,
            inline=_start_inline,
            delay=delay,
        )
    except Exception as exc:
        logger.exception("delivery %s could not be queued", delivery_id)
        Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(
            last_error=f"Could not be queued ({type(exc).__name__}); the sweep retries it."
        )


def _start_inline(delivery_id: int, delay: float) -> None:
    def work() -> None:
        try:
            if delay:
                time.sleep(delay)
            deliver(delivery_id)
        except Exception:
            logger.exception("delivery %s crashed", delivery_id)
        finally:
            connection.close()
            with _inline_lock:
                _inline_threads.discard(threading.current_thread())

    thread = threading.Thread(target=work, name=f"notification-{delivery_id}")
    with _inline_lock:  # started before anyone can see it: a waiter cannot join a thread not yet started
        _inline_threads.add(thread)
        thread.start()


def wait_for_inline_deliveries(timeout: float = 60) -> bool:
    """Wait until the inline backend has nothing left to send (tests, and the CLI before exit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _inline_lock:
            pending = list(_inline_threads)
        if not pending:
            return True
        pending[0].join(timeout=max(0.0, deadline - time.monotonic()))
    return False


# --- One attempt -------------------------------------------------------------------------------


def backoff(attempt: int) -> float:
    """The wait after the `attempt`-th failure: the base, doubled each time, capped."""
    return min(conf.backoff_seconds() * 2 ** (attempt - 1), conf.max_wait_seconds())


def deliver(delivery_id: int) -> str:
    """Make one attempt at a pending delivery; returns its status afterwards.

    Claimed with a conditional UPDATE (pending -> sending), so a message delivered twice sends once.
    While sending, next_attempt_at holds the claim time: the sweep measures a lost attempt from it,
    not from when the attempt was due (a busy queue may claim a delivery long after that)."""
    close_old_connections()
    claimed = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.SENDING, next_attempt_at=timezone.now()
    )
    if not claimed:
        return "not-claimed"
    delivery = Delivery.objects.select_related("channel", "environment").get(pk=delivery_id)
    number = delivery.attempt_count + 1
    started = timezone.now()
    clock = time.monotonic()
    result = _send(delivery)
    duration_ms = round((time.monotonic() - clock) * 1000)

    wait = None
    final_error = ""
    if not result.ok:
        if not result.retryable:
            final_error = result.error
        elif number >= conf.max_attempts():
            final_error = f"{result.error} (gave up after {number} attempts)"
        else:
            wait = max(backoff(number), result.retry_after or 0)
            if wait > conf.max_wait_seconds():
                final_error = f"{result.error} (asked to wait {wait:.0f}s, more than NOTIFY_MAX_WAIT_SECONDS)"
                wait = None

    with transaction.atomic():
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=started,
            duration_ms=duration_ms,
            http_status=result.http_status,
            error=result.error,
            retry_in_seconds=wait,
        )
        fields = {"attempt_count": number, "last_error": result.error}
        if result.ok:
            fields.update(status=DeliveryStatus.SENT, sent_at=timezone.now(), next_attempt_at=None)
        elif wait is not None:
            fields.update(status=DeliveryStatus.PENDING, next_attempt_at=timezone.now() + timedelta(seconds=wait))
        else:
            fields.update(status=DeliveryStatus.FAILED, next_attempt_at=None, last_error=final_error)
        Delivery.objects.filter(pk=delivery_id).update(**fields)
    if result.ok:
        logger.info("notification %s sent to %s (attempt %d)", delivery.event, delivery.channel_name, number)
    elif wait is not None:
        logger.warning(
            "notification %s to %s failed (%s); retrying in %.1fs",
            delivery.event,
            delivery.channel_name,
            result.error,
            wait,
        )
        enqueue(delivery_id, wait)
    else:
        logger.error("notification %s to %s failed: %s", delivery.event, delivery.channel_name, final_error)
    return fields["status"]


def _send(delivery: Delivery) -> sending.Result:
    channel = delivery.channel
    if channel is None:
        return sending.Result(ok=False, error="The channel was deleted.")
    timeout = conf.timeout_seconds()
    try:
        return channel_kind(delivery.channel_kind).send(delivery, timeout)
    except (UnknownChannelKind, SecretUnavailable) as exc:  # no other kind may send it in its place
        return sending.Result(ok=False, error=str(exc))
    except Exception as exc:  # a bug here must end as a recorded failure, not a stuck delivery
        logger.exception("delivery %s: unexpected error", delivery.pk)
        return sending.Result(ok=False, error=f"{type(exc).__name__} while sending.")
