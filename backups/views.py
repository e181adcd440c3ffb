"""The Backups page: freshness against each policy's RPO, verified restores, a size and duration
chart, the filterable list; and the forms behind Backup now, Verify, Restore and policy edits."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backups import credentials, services
from backups.models import ADMIN_FIELDS, Backup, BackupPolicy, BackupStatus, Kind
from opsconsole.access.models import Action
from opsconsole.access.permissions import allowed, require
from opsconsole.access.sudo import sudo_required
from opsconsole.audit.log import record
from opsconsole.environments.models import Environment
from opsconsole.environments.services import visible_environments
from opsconsole.runs.idempotency import AlreadyRequested, form_token, submit_once
from opsconsole.runs.services import Refused
from opsconsole.ui.pagination import keyset_page, parse_int

LIST_FILTERS = ("environment", "kind", "status")
CHART_POINTS = 20
CHART_WIDTH, CHART_HEIGHT = 240, 48


def chart(policy: BackupPolicy) -> dict:
    """Bars for size and a line for duration over the policy's latest backups (inline SVG)."""
    rows = list(policy.backups.available().exclude(finished_at=None).order_by("-finished_at")[:CHART_POINTS])[::-1]
    if not rows:
        return {}
    biggest = max((b.size_bytes or 0) for b in rows) or 1
    longest = max(b.duration.total_seconds() for b in rows) or 1
    step = CHART_WIDTH / max(len(rows), 1)
    bars, points = [], []
    for index, backup in enumerate(rows):
        height = max(1, round((backup.size_bytes or 0) / biggest * (CHART_HEIGHT - 4)))
        bars.append(
            {
                "x": round(index * step + 1, 1),
                "y": CHART_HEIGHT - height,
                "w": max(step - 2, 1),
                "h": height,
                "backup": backup,
            }
        )
        y = CHART_HEIGHT - 2 - backup.duration.total_seconds() / longest * (CHART_HEIGHT - 6)
        points.append(f"{index * step + step / 2:.1f},{y:.1f}")
    return {
        "bars": bars,
        "line": " ".join(points),
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "biggest": biggest,
        "longest": longest,
    }


@login_required
@require_GET
def backups_page(request):
    require(request, Action.VIEW)
    environments = list(visible_environments(request.user))
    policies = BackupPolicy.objects.filter(environment__in=environments).select_related("environment", "periodic_task")
    rows = services.freshness(policies)
    for row in rows:
        row.chart = chart(row.policy)
        row.can_backup = allowed(request.user, Action.BACKUP, row.policy.environment)

    listing = Backup.objects.filter(environment__in=environments).select_related("environment", "run")
    filters = {name: (request.GET.get(name) or "").strip()[:63] for name in LIST_FILTERS}
    if filters["environment"]:
        listing = listing.filter(environment__name=filters["environment"])
    if filters["kind"]:
        listing = listing.filter(kind=filters["kind"])
    if filters["status"]:
        listing = listing.filter(status=filters["status"])
    page = keyset_page(listing, "id", parse_int(request.GET.get("before")), size=25)
    restorable = {env.pk for env in environments if allowed(request.user, Action.BACKUP, env)}
    context = {
        "rows": rows,
        "page": page,
        "filters": filters,
        "environments": environments,
        "kinds": Kind.choices,
        "statuses": BackupStatus.choices,
        "restorable": restorable,
        "can_add_policy": bool(restorable),
    }
    return render(request, "backups/index.html", context)


def _policy(request, policy_id: int) -> BackupPolicy:
    policy = get_object_or_404(BackupPolicy.objects.select_related("environment"), pk=policy_id)
    require(request, Action.VIEW, policy.environment)
    return policy


# The actions below only call a service: it checks the permission (once) and says no in the
# same words whichever door the request came through.


@login_required
@require_POST
def backup_now(request, policy_id: int):
    policy = get_object_or_404(BackupPolicy.objects.select_related("environment"), pk=policy_id)
    try:
        run = services.request_backup(policy, request.user)
    except Refused as exc:
        messages.error(request, str(exc))
        return redirect("backups")
    return redirect("run", run_id=run.pk)


@login_required
@require_POST
def verify_now(request, backup_id: int):
    backup = get_object_or_404(Backup.objects.select_related("environment"), pk=backup_id)
    try:
        run = services.request_verification(backup, request.user)
    except Refused as exc:
        messages.error(request, str(exc))
        return redirect("backups")
    return redirect("run", run_id=run.pk)


@login_required
@sudo_required
@require_http_methods(["GET", "POST"])
def restore(request, backup_id: int):
    backup = get_object_or_404(Backup.objects.select_related("environment", "policy"), pk=backup_id)
    target = (request.POST.get("target") or "").strip()
    if request.method == "POST":
        confirmation = request.POST.get("confirm", "")
        try:
            # The form's one-time token: sent twice, it starts one restore and shows it.
            run = submit_once(request, lambda: services.request_restore(backup, request.user, target, confirmation))
        except AlreadyRequested as done:
            messages.info(request, str(done))
            return redirect("run", run_id=done.run_id)
        except Refused as exc:
            messages.error(request, str(exc))
        else:
            return redirect("run", run_id=run.pk)
    else:
        require(request, Action.BACKUP, backup.environment)  # the form is for those who may restore
    suggestion = f"{backup.policy.database_name if backup.policy else 'restore'}_restore_{backup.pk}"
    if backup.kind == Kind.RDS_SNAPSHOT:
        suggestion = f"{backup.policy.source_identifier if backup.policy else 'db'}-restore-{backup.pk}"
    context = {"backup": backup, "target": target or suggestion, "request_token": form_token()}
    return render(request, "backups/restore.html", context)


def sets_connections(user) -> bool:
    """May `user` set where a policy connects and which password it sends (ADMIN_FIELDS)?"""
    return bool(user is not None and user.is_active and user.is_superuser)


class PolicyForm(forms.ModelForm):
    """A policy's fields; for anyone but an administrator, ADMIN_FIELDS are shown and kept as they
    are, and a pg_dump policy cannot be made (it would need them)."""

    class Meta:
        model = BackupPolicy
        fields = [
            "environment",
            "kind",
            "name",
            "enabled",
            "schedule",
            "retention_days",
            "min_copies",
            "rpo_minutes",
            "copy_to_dr",
            "dr_region",
            "source_identifier",
            "database_host",
            "database_port",
            "database_name",
            "database_user",
            "password_source",
            "bucket",
            "prefix",
            "dr_bucket",
        ]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        allowed_envs = [env.pk for env in Environment.objects.all() if allowed(user, Action.BACKUP, env)]
        self.fields["environment"].queryset = Environment.objects.filter(pk__in=allowed_envs)
        self.fields["password_source"].help_text = credentials.allowed_sources()
        self.administrator = sets_connections(user)
        if not self.administrator:
            for name in ADMIN_FIELDS:
                # A disabled field keeps the stored value whatever is posted.
                self.fields[name].disabled = True
                self.fields[name].help_text = "Set by an administrator."

    def clean(self):
        cleaned = super().clean()
        if self.administrator:
            return cleaned
        if tried := [self.fields[name].label for name in ADMIN_FIELDS if self._posted_a_change(name)]:
            raise forms.ValidationError(
                f"{', '.join(tried)}: set by an administrator only; nothing was saved. Ask an administrator to "
                "change them."
            )
        kind = cleaned.get("kind")
        if kind == Kind.PG_DUMP and (self.instance.pk is None or self.instance.kind != Kind.PG_DUMP):
            self.add_error(
                "kind",
                "Only an administrator makes a pg_dump policy: it names a database server and the password the "
                "worker sends it. Ask one to create it; you can then change its schedule, retention and bucket.",
            )
        return cleaned

    def _posted_a_change(self, name: str) -> bool:
        """Did the request post a value for a read-only field that differs from the stored one?
        (A browser sends none for a disabled field.)"""
        field = self.fields[name]
        key = self.add_prefix(name)
        if key not in self.data:
            return False
        try:
            posted = field.to_python(field.widget.value_from_datadict(self.data, self.files, key))
        except forms.ValidationError:
            return True
        return posted != field.to_python(self.get_initial_for_field(field, name))


@login_required
@require_http_methods(["GET", "POST"])
def policy_edit(request, policy_id: int | None = None):
    policy = _policy(request, policy_id) if policy_id else None
    if policy is not None:
        require(request, Action.BACKUP, policy.environment)
    elif not allowed(request.user, Action.BACKUP):
        raise PermissionDenied("You do not have permission to manage backup policies.")
    form = PolicyForm(request.POST or None, instance=policy, user=request.user)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            saved = form.save()
            record(
                "backups.policy.updated" if policy else "backups.policy.created",
                target=f"backup_policy:{saved.pk}",
                environment=saved.environment.name,
                details={name: form.cleaned_data[name] for name in form.changed_data if name != "environment"},
            )
        messages.success(request, f"Policy {saved.name} saved; its schedule is {saved.schedule} (UTC).")
        return redirect("backups")
    return render(request, "backups/policy_form.html", {"form": form, "policy": policy})


@login_required
@require_POST
def policy_delete(request, policy_id: int):
    policy = _policy(request, policy_id)
    require(request, Action.BACKUP, policy.environment)
    with transaction.atomic():
        record(
            "backups.policy.deleted",
            target=f"backup_policy:{policy.pk}",
            environment=policy.environment.name,
            details={"name": policy.name, "kind": policy.kind},
        )
        policy.delete()
    messages.success(request, f"Policy {policy.name} deleted with its schedule; its backups are kept.")
    return redirect("backups")
