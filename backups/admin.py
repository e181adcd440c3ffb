"""The Django admin for backup policies, backups and restores."""

from django import forms
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError

from backups.models import ADMIN_FIELDS, Backup, BackupPolicy, Restore


class BackupPolicyAdminForm(forms.ModelForm):
    """BackupPolicy.clean() checks fields a staff user who is not a superuser has read-only, so not
    on this form (ADMIN_FIELDS). Django's add_error refuses an error for a field the form lacks
    (ValueError, a 500): such an error becomes one for the whole form, naming the field."""

    def add_error(self, field: str | None, error) -> None:
        if not isinstance(error, ValidationError):
            error = ValidationError(error)
        if field is None and hasattr(error, "error_dict"):  # the model's clean(), as a whole
            kept: dict[str, list] = {}
            for name, errors in error.error_dict.items():
                if name == NON_FIELD_ERRORS or name in self.fields:
                    kept.setdefault(name, []).extend(errors)
                else:
                    kept.setdefault(NON_FIELD_ERRORS, []).extend(self._naming(name, errors))
            error = ValidationError(kept)
        elif field not in (None, NON_FIELD_ERRORS, *self.fields) and not hasattr(error, "error_dict"):
            field, error = None, ValidationError(self._naming(field, error.error_list))
        super().add_error(field, error)

    def _naming(self, name: str, errors: list[ValidationError]) -> list[str]:
        """The errors' messages, each after the label of the field it is about."""
        try:
            label = str(BackupPolicy._meta.get_field(name).verbose_name).capitalize()
        except FieldDoesNotExist:
            label = name
        if name in ADMIN_FIELDS:
            label += " (set by an administrator)"
        return [f"{label}: {message}" for message in ValidationError(errors).messages]


@admin.register(BackupPolicy)
class BackupPolicyAdmin(admin.ModelAdmin):
    form = BackupPolicyAdminForm
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
