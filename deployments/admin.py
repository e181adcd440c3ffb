from django import forms
from django.conf import settings
from django.contrib import admin

from deployments import prometheus
from deployments.models import Release
from opsconsole.audit.admin import AuditedAdmin
from opsconsole.environments.models import Environment, FreezeWindow


class FreezeWindowInline(admin.TabularInline):
    model = FreezeWindow
    extra = 0


class EnvironmentForm(forms.ModelForm):
    class Meta:
        model = Environment
        # The admin adds every field of its fieldsets; these are the ones this form checks.
        fields = ["prometheus_url", "prometheus_query", "prometheus_threshold", "prometheus_comparison"]

    def clean(self):
        """Beyond the model's shape checks: ask the Prometheus server's parser, when it answers."""
        cleaned = super().clean()
        query = (cleaned.get("prometheus_query") or "").strip()
        url = (cleaned.get("prometheus_url") or "").strip() or settings.PROMETHEUS_URL
        if query and url.startswith(("http://", "https://")) and "@" not in url:
            try:
                prometheus.parse_check(url, query)
            except prometheus.QueryError as exc:
                self.add_error("prometheus_query", f"Prometheus cannot parse it: {exc}")
            except prometheus.Unverifiable:
                pass  # not reachable from here: every deploy asks it again before touching the service
        return cleaned


@admin.register(Environment)
class EnvironmentAdmin(AuditedAdmin):
    form = EnvironmentForm
    list_display = ["name", "tier", "aws_region", "strategy", "ecs_cluster", "ecs_service", "required_approvals"]
    inlines = [FreezeWindowInline]
    fieldsets = [
        (None, {"fields": ["name", "tier", "description"]}),
        (
            "Where it runs",
            {"fields": ["aws_region", "role_arn", "ecs_cluster", "ecs_service", "task_family", "container_name"]},
        ),
        (
            "How a deploy proceeds",
            {
                "fields": [
                    "strategy",
                    "migration_command",
                    "smoke_checks",
                    "alarm_names",
                    "bake_seconds",
                    "insufficient_data",
                    "rollout_timeout_seconds",
                    "migration_timeout_seconds",
                ]
            },
        ),
        (
            "Verification by Prometheus",
            {"fields": ["prometheus_url", "prometheus_query", "prometheus_threshold", "prometheus_comparison"]},
        ),
        ("Protection", {"fields": ["required_approvals", "approval_ttl_minutes"]}),
        (
            "Blue/green",
            {
                "classes": ["collapse"],
                "fields": [
                    "green_service",
                    "listener_arn",
                    "test_listener_arn",
                    "blue_target_group_arn",
                    "green_target_group_arn",
                    "test_url",
                    "traffic_steps",
                    "live_color",
                ],
            },
        ),
    ]


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    """Releases are registered by CI or synced from ECR; the admin shows them."""

    list_display = ["tag", "short_digest", "repository", "registered_by_name", "created_at"]
    search_fields = ["tag", "digest", "git_sha"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
