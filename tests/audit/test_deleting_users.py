"""Deleting a user who appears in the audit log: refused with a clear reason (deactivate them
instead), never half-done, and the chain stays intact."""

import pytest
from django.contrib.auth import get_user_model
from django.db.models import ProtectedError

from opsconsole.audit.log import record, verify_chain
from opsconsole.audit.models import AuditEvent
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_a_user_who_appears_in_the_log_cannot_be_deleted(users):
    dana = users["deployer"]
    record("tests.acted", actor=dana)
    with pytest.raises(ProtectedError):
        dana.delete()
    assert get_user_model().objects.filter(pk=dana.pk).exists()
    assert AuditEvent.objects.get().actor_id == dana.pk
    assert verify_chain().ok


def test_the_admin_explains_why_it_will_not_delete_such_a_user(users):
    dana = users["deployer"]
    record("tests.acted", actor=dana)
    root = client_for(users["superuser"])
    url = f"/admin/auth/user/{dana.pk}/delete/"
    page = root.get(url)
    assert page.status_code == 200
    assert "<title>Cannot delete user" in page.content.decode()
    assert root.post(url, {"post": "yes"}).status_code == 200
    assert get_user_model().objects.filter(pk=dana.pk).exists()
    assert verify_chain().ok


def test_a_user_who_never_acted_can_be_deleted(users):
    record("tests.acted", actor=users["deployer"])
    users["nobody"].delete()
    assert not get_user_model().objects.filter(username="norole").exists()
    assert verify_chain().ok


def test_changing_a_user_in_the_admin_is_audited_without_the_password(users):
    from tests.conftest import client_for

    admin = client_for(users["superuser"])
    user = users["viewer"]
    response = admin.post(
        f"/admin/auth/user/{user.pk}/change/",
        {
            "username": user.username,
            "email": "new@example.com",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="admin.auth.user.changed")
    assert event.details["fields"]["email"] == "new@example.com"
    assert event.target == f"auth.user:{user.pk}"
