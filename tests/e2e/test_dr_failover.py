"""The guarded DR button in the browser: a DR operator requests a failover (re-authenticating and
typing the environment's name), a second DR operator approves it on the DR page, and the run's
checklist fills in live until DNS is switched and RTO/RPO are recorded."""

import os

import pytest
from playwright.sync_api import Page, expect

from dr.models import DROperation
from opsconsole.runs.models import Status
from tests.conftest import PASSWORD, make_user
from tests.dr.conftest import dr_endpoint, dr_snapshot, plan  # noqa: F401 (the DR fixtures)
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def shot(page: Page, name: str) -> None:
    # DR_SCREENSHOTS=<dir> keeps pictures of the pages for a reviewer; tests never need them.
    if directory := os.environ.get("DR_SCREENSHOTS"):
        page.screenshot(path=os.path.join(directory, f"{name}.png"), full_page=True)


def test_a_failover_needs_a_second_dr_operator_and_fills_its_checklist_live(
    page: Page,
    users,
    plan,  # noqa: F811
    dr_snapshot,  # noqa: F811
    runs_in_background,
    js_errors,
):
    dave = make_user("dave", "dr_operator", plan.environment)
    sign_in(page, users["dr_operator"])
    page.get_by_role("link", name="DR", exact=True).click()
    expect(page.locator("#active-site")).to_contain_text("primary")
    page.get_by_role("button", name="Check now").click()
    expect(page.locator("#readiness")).to_have_text("ready")
    shot(page, "dr-page-ready")

    page.locator("#failover-button").click()
    page.get_by_label("Password").fill(PASSWORD)  # re-authentication
    page.get_by_role("button", name="Confirm").click()
    page.get_by_label("Reason").fill("INC-42: us-east-1 unreachable")
    page.get_by_label("to confirm").fill("Staging")
    page.get_by_role("button", name="Request failover").click()
    expect(page.locator(".msg.error")).to_contain_text("Type the environment's name, staging, exactly")
    page.get_by_label("Reason").fill("INC-42: us-east-1 unreachable")
    page.get_by_label("to confirm").fill("staging")
    page.get_by_role("button", name="Request failover").click()
    expect(page.locator("#run-status")).to_have_text("Awaiting approval")
    run_url = page.url

    page.goto("/dr/")
    page.locator(".pending").get_by_role("button", name="Approve").click()
    expect(page.locator(".msg.error")).to_contain_text("You cannot approve your own request")

    page.context.clear_cookies()
    sign_in(page, dave)
    page.goto("/dr/")
    expect(page.locator(".pending")).to_contain_text("INC-42")
    page.locator(".pending input[name=comment]").fill("confirmed with the incident lead")
    page.locator(".pending").get_by_role("button", name="Approve").click()
    page.get_by_label("Password").fill(PASSWORD)  # a vote on a failover asks for it again too...
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".msg.success")).to_contain_text("Your decision")  # ...and then casts it as typed

    page.goto(run_url)
    steps = page.locator("#run-steps li")
    expect(steps).to_have_count(6)
    expect(steps.last).to_have_class("st-done", timeout=60_000)
    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=30_000)
    expect(page.locator("#log")).to_contain_text("Approved by dave: confirmed with the incident lead")
    expect(page.locator("#log")).to_contain_text("RTO:")
    shot(page, "dr-failover-run")

    op = DROperation.objects.get()
    assert op.run.status == Status.SUCCEEDED and op.rto_seconds is not None and op.rpo_seconds is not None
    page.goto("/dr/")
    expect(page.locator("#active-site")).to_contain_text("DR")
    expect(page.locator("#failback-button")).to_be_visible()
    shot(page, "dr-page-failed-over")
    assert js_errors == []
