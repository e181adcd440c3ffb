from django.contrib import admin

from opsconsole.runs.models import EnvironmentLock, Run


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    """Runs change only through the run engine; the admin shows them."""

    list_display = ["id", "kind", "environment", "status", "requested_by_name", "created_at"]
    list_filter = ["status", "kind"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(EnvironmentLock)
class EnvironmentLockAdmin(admin.ModelAdmin):
    list_display = ["environment", "run", "held_by", "reason", "acquired_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
