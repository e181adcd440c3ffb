"""The Infrastructure page: drift and last plan per environment, the diff grouped by action,
who planned and approved, the code; a broken .tf file is a message, never a 500."""

import pytest

from infrastructure import services
from infrastructure.models import Plan
from opsconsole.runs.models import Run
from tests.conftest import client_for
from tests.infrastructure.conftest import use_stack

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_page_shows_the_plan_grouped_by_action_and_who_planned_and_approved(users, workspace):
    page = client_for(users["viewer"]).get("/infrastructure/staging/").content.decode()
    assert "No plan yet." in page

    response = client_for(users["deployer"]).post("/infrastructure/staging/plan/")
    run = Run.objects.get(kind="terraform.plan")
    assert response.status_code == 302 and response.url == f"/runs/{run.pk}/"
    response = client_for(users["deployer"]).post(f"/infrastructure/staging/plans/{run.pk}/apply/")
    assert response.status_code == 302
    apply = Run.objects.get(kind="terraform.apply")
    client_for(users["approver"]).post(f"/infrastructure/staging/runs/{apply.pk}/decide/", {"decision": "approve"})

    page = client_for(users["viewer"]).get("/infrastructure/staging/").content.decode()
    assert "2 to add, 0 to change, 0 to destroy" in page
    assert "<h3>Create <span" in page and "terraform_data.app" in page
    assert "planned by <strong>dana</strong>" in page and "approved by <strong>arthur</strong>" in page
    assert "sk-live-abcdef0123456789" not in page
    assert 'id="plan-button"' not in page  # a viewer only looks

    overview = client_for(users["viewer"]).get("/infrastructure/").content.decode()
    assert 'href="/infrastructure/staging/"' in overview and "+2 ~0 -0" in overview
    assert "terraform_data.config" in overview  # the code view


def test_a_viewer_cannot_plan_from_the_page(users, workspace):
    response = client_for(users["viewer"]).post("/infrastructure/staging/plan/")
    assert response.status_code == 403
    assert not Run.objects.exists()


def test_a_syntax_error_is_a_clear_message_not_a_500(users, workspace, terraform_root):
    use_stack(terraform_root, "syntax_error")
    page = client_for(users["viewer"]).get("/infrastructure/staging/")
    assert page.status_code == 200
    assert "Some files could not be read" in page.content.decode()
    assert "main.tf: " in page.content.decode()
    assert client_for(users["viewer"]).get("/infrastructure/").status_code == 200

    client_for(users["deployer"]).post("/infrastructure/staging/plan/")
    run = Run.objects.get(kind="terraform.plan")
    run.refresh_from_db()
    assert run.status == "failed" and "[syntax]" in run.error and "main.tf" in run.error


def test_an_environment_without_a_workspace_says_so(users, staging):
    page = client_for(users["admin"]).get("/infrastructure/staging/").content.decode()
    assert "has no Terraform workspace" in page
    response = client_for(users["admin"]).post("/infrastructure/staging/plan/", follow=True)
    assert "staging has no Terraform workspace" in response.content.decode()
    assert not Plan.objects.exists() and not services.Run.objects.exists()
