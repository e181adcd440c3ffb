"""Sign-ins, sign-outs and failed sign-ins each append an event carrying the client's address,
user agent and the request id the response echoes back."""

import pytest
from django.test import Client

from opsconsole.audit.log import verify_chain
from opsconsole.audit.models import AuditEvent, Outcome
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) OpsConsoleTest/1.0"


@pytest.fixture
def browser():
    return Client(REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT=BROWSER)


def only_event(action: str) -> AuditEvent:
    return AuditEvent.objects.get(action=action)


def test_a_sign_in_is_audited_with_address_agent_and_request_id(users, browser):
    response = browser.post("/login/", {"username": "dana", "password": PASSWORD})
    assert response.status_code == 302
    assert browser.session["_auth_user_id"] == str(users["deployer"].pk)
    event = only_event("auth.login")
    assert event.actor == users["deployer"]
    assert event.actor_name == "dana"
    assert event.target == "user:dana"
    assert event.outcome == Outcome.SUCCESS
    assert event.ip == "203.0.113.7"
    assert event.user_agent == BROWSER
    assert event.request_id
    assert event.request_id == response["X-Request-ID"]
    assert verify_chain().ok


def test_a_sign_out_is_audited(users, browser):
    browser.post("/login/", {"username": "dana", "password": PASSWORD})
    response = browser.post("/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in browser.session
    event = only_event("auth.logout")
    assert event.actor == users["deployer"]
    assert event.target == "user:dana"
    assert event.ip == "203.0.113.7"
    assert event.user_agent == BROWSER
    assert event.request_id == response["X-Request-ID"]
    assert event.request_id != only_event("auth.login").request_id


def test_a_sign_out_without_a_session_records_nothing(db, browser):
    browser.post("/logout/")
    assert not AuditEvent.objects.exists()


def test_a_failed_sign_in_is_audited_without_the_password(users, browser):
    response = browser.post("/login/", {"username": "dana", "password": "not-the-password"})
    assert response.status_code == 200
    assert "_auth_user_id" not in browser.session
    event = only_event("auth.login.failed")
    assert event.outcome == Outcome.FAILURE
    assert event.actor is None
    assert event.target == "user:dana"
    assert event.details == {"username": "dana"}
    assert event.ip == "203.0.113.7"
    assert event.user_agent == BROWSER
    assert event.request_id == response["X-Request-ID"]
    assert not AuditEvent.objects.filter(details__icontains="not-the-password").exists()
    assert not AuditEvent.objects.filter(action="auth.login").exists()


def test_a_failed_sign_in_for_an_unknown_user_is_audited_too(db, browser):
    browser.post("/login/", {"username": "mallory", "password": "guess"})
    event = only_event("auth.login.failed")
    assert event.details == {"username": "mallory"}
    assert event.actor_name == "system"


def test_a_sane_incoming_request_id_is_kept_and_audited(users, browser):
    response = browser.post("/login/", {"username": "dana", "password": PASSWORD}, HTTP_X_REQUEST_ID="trace-42.a_b")
    assert response["X-Request-ID"] == "trace-42.a_b"
    assert only_event("auth.login").request_id == "trace-42.a_b"


def test_an_unsafe_incoming_request_id_is_replaced(users, browser):
    response = browser.post(
        "/login/", {"username": "dana", "password": PASSWORD}, HTTP_X_REQUEST_ID="<script>" + "x" * 80
    )
    assert response["X-Request-ID"] != "<script>" + "x" * 80
    assert only_event("auth.login").request_id == response["X-Request-ID"]
