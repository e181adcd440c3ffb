"""Changes made in the admin are audited; a model that moved to another app (the Environment,
from deployments to the core) keeps the audit code and target its history was recorded under."""

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
