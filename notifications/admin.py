"""Channels are created and edited in the admin (audited like every admin change); deliveries
and their attempts are shown read-only, filterable by environment, event and status."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from notifications.events import CHOICES
from notifications.models import Channel, Delivery, DeliveryAttempt
from opsconsole.audit.admin import AuditedAdmin


class ChannelForm(forms.ModelForm):
    events = forms.MultipleChoiceField(choices=CHOICES, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Channel
        fields = ["environment", "name", "kind", "enabled", "events", "secret", "recipients"]
        labels = {"secret": "Secret reference"}
        widgets = {
            "secret": forms.TextInput(attrs={"size": 60, "placeholder": "env:SLACK_WEBHOOK_URL"}),
            "recipients": forms.Textarea(attrs={"rows": 2, "cols": 60}),
        }


@admin.register(Channel)
class ChannelAdmin(AuditedAdmin):
    form = ChannelForm
    list_display = ["name", "environment", "kind", "enabled", "event_list"]
    list_filter = ["environment", "kind", "enabled"]

    @admin.display(description="events")
    def event_list(self, channel: Channel) -> str:
        return ", ".join(channel.events)


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["number", "started_at", "duration_ms", "http_status", "error", "retry_in_seconds"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "environment",
        "event",
        "channel_name",
        "status",
        "attempts_made",
    ]
    list_filter = ["environment", "status", "event", "channel_kind"]
    search_fields = ["summary", "channel_name"]
    inlines = [AttemptInline]
    readonly_fields = [
        "environment",
        "channel",
        "channel_name",
        "channel_kind",
        "event",
        "summary",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_error",
        "created_at",
        "sent_at",
        "facts",
        "payload",
    ]
    fields = readonly_fields

    @admin.display(description="attempts", ordering="attempt_count")
    def attempts_made(self, delivery: Delivery) -> int:
        return delivery.attempt_count

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
