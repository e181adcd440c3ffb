from django.contrib import admin

from deployments.models import Environment, FreezeWindow, Release
from opsconsole.audit.admin import AuditedAdmin


class FreezeWindowInline(admin.TabularInline):
    model = FreezeWindow
    extra = 0


@admin.register(Environment)
class EnvironmentAdmin(AuditedAdmin):
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
                    "rollout_timeout_seconds",
                    "migration_timeout_seconds",
                ]
            },
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

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        saved = formset.new_objects + [obj for obj, _ in formset.changed_objects]
        for verb, windows in (("saved", saved), ("deleted", formset.deleted_objects)):
            for window in windows:
                details = {"starts_at": str(window.starts_at), "ends_at": str(window.ends_at), "reason": window.reason}
                self._audit(request, window, verb, details)


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    """Releases are registered by CI or synced from ECR; the admin shows them."""

    list_display = ["tag", "short_digest", "repository", "registered_by_name", "created_at"]
    search_fields = ["tag", "digest", "git_sha"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
