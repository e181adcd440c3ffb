from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from opsconsole.access.models import ApiToken, RoleBinding
from opsconsole.audit.admin import AuditedAdmin


@admin.register(RoleBinding)
class RoleBindingAdmin(AuditedAdmin):
    list_display = ["user", "role", "environment"]
    list_filter = ["role", "environment"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created on the API tokens page (shown once there); the admin only lists them."""

    list_display = [
        "name",
        "prefix",
        "scopes",
        "all_environments",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = [
        "name",
        "prefix",
        "token_hash",
        "scopes",
        "all_environments",
        "environments",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoke on the API tokens page instead: that is audited and keeps the record


class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    """Django's user admin, with every change audited (password hashes are masked by the log)."""


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), AuditedUserAdmin)
