"""A production deploy through two people in the browser: the deployer requests it, cannot approve
it themselves, a second person approves, the log streams, and the history shows the outcome."""

import re

import pytest
from playwright.sync_api import Page, expect

from deployments.models import Deployment
from opsconsole.access.models import Role, RoleBinding
from opsconsole.runs.models import Status
from tests.deployments.conftest import wire
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_deploy_to_production_needs_a_second_person(
    page: Page,
    users,
    production,
    stack,
    releases,
    runs_in_background,
    js_errors,
):
    wire(production, stack, "production", required_approvals=1, bake_seconds=1)
    for name in ("deployer", "approver"):
        RoleBinding.objects.create(user=users[name], role=getattr(Role, name.upper()), environment=production)
    # The deployer may also approve elsewhere: the rule under test is "never your own request".
    RoleBinding.objects.create(user=users["deployer"], role=Role.APPROVER, environment=production)

    sign_in(page, users["deployer"])
    page.get_by_role("link", name="Environments").click()
    page.get_by_role("link", name="production").click()
    page.locator("select[name=release]").select_option(label=f"v1.1.0 · {releases['v1.1.0'].short_digest}")
    page.get_by_role("button", name="Deploy").click()
    expect(page.locator("#run-status")).to_have_text("Awaiting approval")
    run_url = page.url

    page.get_by_role("link", name="Environments").click()
    page.get_by_role("link", name="production").click()
    pending = page.locator(".pending")
    expect(pending).to_contain_text("requested by dana")
    pending.get_by_role("button", name="Approve").click()
    expect(page.locator(".msg.error")).to_have_text("You cannot approve your own request; ask another approver.")

    page.context.clear_cookies()
    sign_in(page, users["approver"])
    page.goto("/environments/production/")
    page.locator(".pending input[name=comment]").fill("CHG-1234 reviewed")
    page.locator(".pending").get_by_role("button", name="Approve").click()
    expect(page.locator(".msg.success")).to_contain_text("Your decision")

    page.goto(run_url)
    expect(page.locator("#log")).to_contain_text("Approved by arthur: CHG-1234 reviewed")
    expect(page.locator("#log")).to_contain_text("Rollout", timeout=60_000)
    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=90_000)
    expect(page.locator("#log li").last).to_have_text(re.compile(r"Succeeded\.$"))

    page.goto("/environments/production/")
    row = page.locator("#history tbody tr").first
    expect(row).to_contain_text("v1.1.0")
    expect(row).to_contain_text("Succeeded")
    expect(row).to_contain_text("dana")
    assert Deployment.objects.get().run.status == Status.SUCCEEDED
    assert js_errors == []
