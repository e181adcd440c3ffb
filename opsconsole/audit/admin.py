"""The admin shows the audit log read-only, and audits every change made through the admin: every
registered model's ModelAdmin is made an audited one when the console starts (audit_every_admin),
the apps' own and third parties' (schedules) alike, inline rows included."""

from django.contrib import admin
from django.contrib.admin import helpers
from django.forms.models import model_to_dict

from opsconsole.audit.log import record
from opsconsole.audit.models import AuditEvent

# Models that moved to another app keep the audit codes and targets they were recorded under, so
# a filter or an export over the audit log finds their whole history under one name.
AUDIT_LABELS = {
    "environments.environment": "deployments.environment",
    "environments.freezewindow": "deployments.freezewindow",
}


def _snapshot(obj) -> dict:
    return {key: str(value)[:200] for key, value in model_to_dict(obj).items()}


class AuditedAdminMixin:
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
        snapshot = _snapshot(obj)
        pk = obj.pk  # Django clears it on delete; the audit names what was deleted
        super().delete_model(request, obj)
        self._audit(request, obj, "deleted", {"was": snapshot}, pk=pk)

    def response_action(self, request, queryset):
        """A changelist action (a schedule's enable, disable or run) may change rows with one
        queryset.update(), past save_model: the action and the rows it was given are an event.
        Deleting is audited row by row (delete_queryset)."""
        name = request.POST.get("action", "")
        across = request.POST.get("select_across") == "1"  # "select all N": the whole filtered list
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if across:
            selected = [str(pk) for pk in queryset.values_list("pk", flat=True)]
        response = super().response_action(request, queryset)
        if name and name != "delete_selected" and selected and name in self.get_actions(request):
            label = AUDIT_LABELS.get(self.model._meta.label_lower, self.model._meta.label_lower)
            record(
                f"admin.{label}.action",
                target=f"{label}:{','.join(selected)[:150]}",
                details={"action": name, "objects": selected[:100], "count": len(selected), "select_across": across},
                request=request,
            )
        return response

    def user_change_password(self, request, id, form_url=""):
        """The user admin's password form saves past save_model; the change (never the password)
        is an event."""
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            record(f"admin.{self.model._meta.label_lower}.password_changed", target=f"user:{id}", request=request)
        return response

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def save_formset(self, request, form, formset, change):
        """Inline rows (an environment's freeze windows) are changes of their own."""
        doomed = [
            (row.instance, row.instance.pk, _snapshot(row.instance)) for row in formset.deleted_forms if row.instance.pk
        ]
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            self._audit(request, obj, "added", {"fields": _snapshot(obj)})
        for obj, names in formset.changed_objects:
            self._audit(
                request, obj, "changed", {"fields": {name: str(getattr(obj, name, ""))[:200] for name in names}}
            )
        for obj, pk, snapshot in doomed:
            self._audit(request, obj, "deleted", {"was": snapshot}, pk=pk)


class AuditedAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """A ModelAdmin whose changes are audited (every registered one is, see audit_every_admin)."""


def audit_every_admin(site: admin.AdminSite = admin.site) -> None:
    """Make every registered ModelAdmin an audited one (run once every app's admin module is
    loaded): a superuser's change to a policy, a schedule or a lock is an audit event too."""
    for model, model_admin in list(site._registry.items()):
        if isinstance(model_admin, AuditedAdminMixin):
            continue
        audited = type(f"Audited{type(model_admin).__name__}", (AuditedAdminMixin, type(model_admin)), {})
        site.unregister(model)
        site.register(model, audited)


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
