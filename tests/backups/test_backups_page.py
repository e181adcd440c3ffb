"""The Backups page: freshness per policy, the list with filters, Backup now; viewers change nothing."""

import pytest

from backups.models import Backup
from opsconsole.runs.models import Run, Status
from tests.conftest import client_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_an_operator_backs_up_from_the_page_and_sees_it_fresh(users, pg_policy):
    client = client_for(users["backup_operator"])
    page = client.get("/backups/")
    assert page.status_code == 200 and b"nightly dump" in page.content and b"overdue" in page.content
    response = client.post(f"/backups/policies/{pg_policy.pk}/run/")
    assert response.status_code == 302
    run = Run.objects.get(kind="backups.pg_dump")
    assert run.status == Status.SUCCEEDED, run.error
    page = client.get("/backups/?kind=pg_dump&status=available")
    assert b'class="badge ok freshness"' in page.content
    assert "Restore…".encode() in page.content


def test_a_viewer_sees_the_page_but_cannot_back_up(users, pg_policy):
    client = client_for(users["viewer"])
    page = client.get("/backups/")
    assert page.status_code == 200 and b"Backup now" not in page.content
    assert client.post(f"/backups/policies/{pg_policy.pk}/run/").status_code == 403
    assert not Run.objects.exists() and not Backup.objects.exists()


def test_a_policy_is_edited_in_the_browser_and_audited(users, pg_policy):
    client = client_for(users["backup_operator"])
    form = client.get(f"/backups/policies/{pg_policy.pk}/edit/")
    assert form.status_code == 200
    data = {f.name: f.value() for f in form.context["form"]}
    data.update(schedule="30 1 * * *", copy_to_dr="on", enabled="on")
    data = {k: v for k, v in data.items() if v not in (None, False)}
    response = client.post(f"/backups/policies/{pg_policy.pk}/edit/", data)
    assert response.status_code == 302, response.context["form"].errors
    pg_policy.refresh_from_db()
    assert pg_policy.schedule == "30 1 * * *"
    assert pg_policy.periodic_task.crontab.hour == "1"
