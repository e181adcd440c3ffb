"""The admin shows the audit log read-only, and audits every change made through the admin."""

from django.contrib import admin
from django.forms.models import model_to_dict

from opsconsole.audit.log import record
from opsconsole.audit.models import AuditEvent

# Models that moved to another app keep the audit codes and targets they were recorded under, so
# a filter or an export over the audit log finds their whole history under one name.
AUDIT_LABELS = {
    "environments.environment": "deployments.environment",
    "environments.freezewindow": "deployments.freezewindow",
}


class AuditedAdmin(admin.ModelAdmin):
    """Records every admin add, change and delete in the audit log."""

    def _audit(self, request, obj, verb: str, details: dict, pk=None) -> None:
        environment = getattr(obj, "environment", None) if obj._meta.label_lower != "environments.environment" else obj
        label = AUDIT_LABELS.get(obj._meta.label_lower, obj._meta.label_lower)
        record(
            f"admin.{label}.{verb}",
            target=f"{label}:{pk or obj.pk}",
            environment=getattr(environment, "name", "") or "",
            details=details,
            request=request,
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        changed = {name: str(form.cleaned_data.get(name))[:200] for name in form.changed_data}
        self._audit(request, obj, "changed" if change else "added", {"fields": changed})

    def delete_model(self, request, obj):
        snapshot = {k: str(v)[:200] for k, v in model_to_dict(obj).items()}
        pk = obj.pk  # Django clears it on delete; the audit names what was deleted
        super().delete_model(request, obj)
        self._audit(request, obj, "deleted", {"was": snapshot}, pk=pk)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["seq", "at", "actor_name", "action", "target", "environment", "outcome"]
    list_filter = ["outcome"]
    search_fields = ["action", "actor_name", "target"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
