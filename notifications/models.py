"""A Channel is where one environment's notifications go (a Slack webhook, a PagerDuty service,
email recipients) and which events it wants. A Delivery is one event for one channel, with the
payload as sent (never the secret); each DeliveryAttempt is one try at sending it. What a kind of
channel means is its registered ChannelKind (notifications/channels/)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from notifications import channels
from notifications.events import CHOICES, EVENTS


def validate_events(value) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("Choose at least one event.")
    unknown = [item for item in value if item not in EVENTS]
    if unknown:
        raise ValidationError(f"Unknown event(s): {', '.join(map(str, unknown))}.")


class Channel(models.Model):
    environment = models.ForeignKey(
        "environments.Environment", on_delete=models.CASCADE, related_name="notification_channels"
    )
    name = models.CharField(max_length=80, help_text="e.g. #ops-staging, on-call")
    kind = models.CharField(max_length=20, choices=channels.choices)
    events = models.JSONField(default=list, validators=[validate_events], help_text="The events this channel wants.")
    enabled = models.BooleanField(default=True)
    secret = models.CharField(
        max_length=300,
        blank=True,
        help_text='Slack: the webhook URL; PagerDuty: the routing key. Give "env:VARIABLE" (of the worker) '
        'or "secretsmanager:SECRET-ID", never the value: it is read when sending.',
    )
    recipients = models.TextField(blank=True, help_text="Email: addresses, comma-separated.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["environment__name", "name"]
        constraints = [models.UniqueConstraint(fields=["environment", "name"], name="unique_channel_name")]

    def __str__(self) -> str:
        return f"{self.environment} · {self.name} ({self.get_kind_display()})"

    def clean(self) -> None:
        kind = channels.CHANNEL_KINDS.get(self.kind)
        if kind is None:
            return  # full_clean() refuses it already: the field's choices are the registered kinds
        kind.clean(self)

    def wants(self, event: str) -> bool:
        return self.enabled and event in (self.events or [])


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    channel = models.ForeignKey(Channel, null=True, on_delete=models.SET_NULL, related_name="deliveries")
    channel_name = models.CharField(max_length=80)
    channel_kind = models.CharField(max_length=20, choices=channels.choices)
    environment = models.ForeignKey(
        "environments.Environment", on_delete=models.CASCADE, related_name="notification_deliveries"
    )
    event = models.CharField(max_length=40, choices=CHOICES)
    summary = models.CharField(max_length=500)
    facts = models.JSONField(default=dict, blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text="What is sent, without the secret.")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["environment", "-id"]), models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event} -> {self.channel_name} ({self.status})"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    retry_in_seconds = models.FloatField(null=True, blank=True, help_text="Empty: no retry followed.")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="unique_delivery_attempt")]

    def __str__(self) -> str:
        return f"attempt {self.number}"

    @property
    def succeeded(self) -> bool:
        return not self.error
