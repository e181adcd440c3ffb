from django.contrib import admin

from backups.models import ADMIN_FIELDS, Backup, BackupPolicy, Restore


@admin.register(BackupPolicy)
class BackupPolicyAdmin(admin.ModelAdmin):
    list_display = ("name", "environment", "kind", "schedule", "enabled", "retention_days", "min_copies", "copy_to_dr")
    list_filter = ("kind", "environment", "enabled")
    readonly_fields = ("periodic_task",)

    def get_readonly_fields(self, request, obj=None):
        # Staff with the change permission but not superusers see where a policy connects and which
        # password it sends, and cannot change it (as on the Backups page).
        if request.user.is_superuser:
            return self.readonly_fields
        return (*self.readonly_fields, *ADMIN_FIELDS)


@admin.register(Backup)
class BackupAdmin(admin.ModelAdmin):
    list_display = ("id", "environment", "kind", "status", "identifier", "size_bytes", "started_at", "verification")
    list_filter = ("kind", "status", "environment")
    readonly_fields = [f.name for f in Backup._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Restore)
class RestoreAdmin(admin.ModelAdmin):
    list_display = ("id", "backup", "target", "requested_by_name", "created_at")
    readonly_fields = ("backup", "run", "target", "requested_by_name", "created_at")
