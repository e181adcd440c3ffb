"""Releases synced from ECR on demand: every tagged image once, idempotently."""

import pytest

from deployments.models import Release
from opsconsole.audit.models import AuditEvent
from tests.conftest import client_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_sync_registers_each_tagged_image_once(users, stack, settings):
    settings.OPSCONSOLE_ECR_REPOSITORIES = ["us-east-1/sentinel-api"]
    client = client_for(users["deployer"])
    response = client.post("/releases/sync/", follow=True)
    assert "4 new release(s) registered from ECR." in response.content.decode()
    assert {r.tag: r.digest for r in Release.objects.all()} == stack.images
    assert all(r.repository == stack.repository_uri for r in Release.objects.all())
    assert AuditEvent.objects.filter(action="deployments.release.registered").count() == 4

    response = client.post("/releases/sync/", follow=True)
    assert "0 new release(s) registered from ECR." in response.content.decode()
    assert Release.objects.count() == 4


def test_a_missing_repository_is_reported_not_crashed(users, stack, settings):
    settings.OPSCONSOLE_ECR_REPOSITORIES = ["us-east-1/no-such-repo"]
    response = client_for(users["deployer"]).post("/releases/sync/", follow=True)
    assert "Could not read ECR repository no-such-repo in us-east-1" in response.content.decode()
    assert not Release.objects.exists()


def test_a_viewer_cannot_sync(users, stack, settings):
    settings.OPSCONSOLE_ECR_REPOSITORIES = ["us-east-1/sentinel-api"]
    assert client_for(users["viewer"]).post("/releases/sync/").status_code == 403
    assert not Release.objects.exists()
