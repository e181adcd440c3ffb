"""Changes made in the admin are audited; a model that moved to another app (the Environment,
from deployments to the core) keeps the audit code and target its history was recorded under."""

import json

import pytest

from opsconsole.audit.models import AuditEvent
from opsconsole.environments.models import Environment
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_deleting_an_environment_in_the_admin_is_audited_under_its_historical_code(users):
    doomed = Environment.objects.create(name="scratch")
    response = client_for(users["superuser"]).post(
        f"/admin/environments/environment/{doomed.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Environment.objects.filter(pk=doomed.pk).exists()
    event = AuditEvent.objects.get(action="admin.deployments.environment.deleted")
    assert (event.target, event.environment, event.actor_name) == (
        f"deployments.environment:{doomed.pk}",
        "scratch",
        "root",
    )


def test_a_change_to_any_registered_model_in_the_admin_is_audited(users, staging):
    """Models whose admin was written without auditing (locks, schedules) are audited too."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from opsconsole.runs.models import EnvironmentLock

    lock = EnvironmentLock.objects.create(environment=staging, held_by="dana", reason="maintenance")
    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    task = PeriodicTask.objects.create(name="nightly", task="backups.tasks.run_policy", interval=every)
    admin = client_for(users["superuser"])
    for url in (
        f"/admin/runs/environmentlock/{lock.pk}/delete/",
        f"/admin/django_celery_beat/periodictask/{task.pk}/delete/",
    ):
        assert admin.post(url, {"post": "yes"}).status_code == 302, url
    lock_event = AuditEvent.objects.get(action="admin.runs.environmentlock.deleted")
    assert (lock_event.target, lock_event.environment) == (f"runs.environmentlock:{lock.pk}", "staging")
    assert lock_event.details["was"]["reason"] == "maintenance"
    assert AuditEvent.objects.get(action="admin.django_celery_beat.periodictask.deleted").target == (
        f"django_celery_beat.periodictask:{task.pk}"
    )


def test_an_inline_row_added_in_the_admin_is_audited(users, staging):
    """A freeze window added on the environment's admin page is an audit event of its own."""
    admin = client_for(users["superuser"])
    url = f"/admin/environments/environment/{staging.pk}/change/"
    page = admin.get(url)
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = json.dumps(value) if isinstance(value, list | dict) else value
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name in management.fields:
            data[f"{management.prefix}-{name}"] = management[name].value()
        prefix = formset.formset.prefix
    data[f"{prefix}-TOTAL_FORMS"] = 1
    data.update(
        {
            f"{prefix}-0-starts_at_0": "2026-12-24",
            f"{prefix}-0-starts_at_1": "00:00:00",
            f"{prefix}-0-ends_at_0": "2026-12-27",
            f"{prefix}-0-ends_at_1": "00:00:00",
            f"{prefix}-0-reason": "holidays",
        }
    )
    response = admin.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    [event] = AuditEvent.objects.filter(action__startswith="admin.deployments.freezewindow.")
    assert event.action == "admin.deployments.freezewindow.added"
    assert event.environment == "staging" and event.details["fields"]["reason"] == "holidays"


def test_a_changelist_action_that_updates_rows_in_bulk_is_audited(users):
    """django-celery-beat's enable/disable actions change rows with queryset.update()."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    tasks = [
        PeriodicTask.objects.create(name=f"nightly {n}", task="backups.tasks.run_policy", interval=every)
        for n in (1, 2)
    ]
    response = client_for(users["superuser"]).post(
        "/admin/django_celery_beat/periodictask/",
        {"action": "disable_tasks", "_selected_action": [str(task.pk) for task in tasks]},
    )

    assert response.status_code == 302
    assert not PeriodicTask.objects.filter(pk__in=[task.pk for task in tasks], enabled=True).exists()
    event = AuditEvent.objects.get(action="admin.django_celery_beat.periodictask.action")
    assert event.details["action"] == "disable_tasks" and event.details["count"] == 2
    assert sorted(event.details["objects"]) == sorted(str(task.pk) for task in tasks)
    assert event.actor_name == "root"


def test_a_password_set_in_the_user_admin_is_audited_without_the_password(users):
    target = users["viewer"]
    response = client_for(users["superuser"]).post(
        f"/admin/auth/user/{target.pk}/password/",
        {"password1": "a new long passphrase 42", "password2": "a new long passphrase 42", "usable_password": "true"},
    )

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="admin.auth.user.password_changed")
    assert event.target == f"user:{target.pk}" and event.actor_name == "root"
    assert "passphrase" not in json.dumps(event.details)


def test_an_action_on_every_row_of_the_list_counts_them_all(users):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    tasks = [PeriodicTask.objects.create(name=f"t{n}", task="backups.tasks.run_policy", interval=every) for n in (1, 2)]
    response = client_for(users["superuser"]).post(
        "/admin/django_celery_beat/periodictask/",
        {"action": "disable_tasks", "select_across": "1", "_selected_action": [str(tasks[0].pk)]},
    )

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="admin.django_celery_beat.periodictask.action")
    assert event.details["select_across"] is True
    assert event.details["count"] == PeriodicTask.objects.count() >= 2
