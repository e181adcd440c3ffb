from django.contrib import admin

from dr.models import DROperation, DRPlan, ReadinessCheck
from opsconsole.audit.admin import AuditedAdmin


@admin.register(DRPlan)
class DRPlanAdmin(AuditedAdmin):
    list_display = ["environment", "primary_region", "dr_region", "record_name", "rpo_minutes", "rto_minutes"]
    readonly_fields = ["active_site"]
    fieldsets = [
        (None, {"fields": ["environment", "primary_region", "dr_region", "active_site"]}),
        (
            "DNS",
            {
                "fields": [
                    "hosted_zone_id",
                    "record_name",
                    "record_type",
                    "record_ttl",
                    "primary_target",
                    "dr_target",
                    "drill_record_name",
                ]
            },
        ),
        (
            "DR side",
            {
                "fields": [
                    "db_source_identifier",
                    "dr_db_instance",
                    "dr_db_instance_class",
                    "dr_ecs_cluster",
                    "dr_ecs_service",
                    "dr_container_name",
                    "dr_desired_count",
                    "dr_smoke_url",
                    "primary_smoke_url",
                    "terraform_var_file",
                    "terraform_workspace",
                ]
            },
        ),
        (
            "Targets and guards",
            {
                "fields": [
                    "rpo_minutes",
                    "rto_minutes",
                    "approval_window_minutes",
                    "cooldown_minutes",
                    "rollout_timeout_seconds",
                    "restore_timeout_seconds",
                ]
            },
        ),
    ]


@admin.register(ReadinessCheck)
class ReadinessCheckAdmin(admin.ModelAdmin):
    list_display = ["plan", "checked_at", "ok", "requested_by_name"]
    readonly_fields = ["plan", "checked_at", "ok", "items", "requested_by_name"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(DROperation)
class DROperationAdmin(admin.ModelAdmin):
    list_display = ["id", "plan", "operation", "run", "approved_at", "dns_switched_at", "rto_seconds", "rpo_seconds"]
    readonly_fields = [f.name for f in DROperation._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
