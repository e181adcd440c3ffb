from django.contrib import admin

from infrastructure.models import Plan, Workspace
from opsconsole.audit.admin import AuditedAdmin


@admin.register(Workspace)
class WorkspaceAdmin(AuditedAdmin):
    list_display = ["environment", "name", "directory", "var_file", "drift_check", "drift_status", "drift_checked_at"]
    readonly_fields = ["drift_status", "drift_checked_at", "drifted_resources", "outputs"]


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["run", "workspace", "purpose", "has_changes", "created_at"]
    list_filter = ["purpose", "has_changes"]
    readonly_fields = [f.name for f in Plan._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
