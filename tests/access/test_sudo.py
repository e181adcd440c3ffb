"""Sudo mode: confirming the password again before a dangerous action, then going back."""

import time

import pytest

from opsconsole.access.sudo import SESSION_KEY
from opsconsole.audit.models import AuditEvent, Outcome
from tests.conftest import PASSWORD, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(users):
    return client_for(users["admin"])


def in_sudo_mode(client) -> bool:
    return client.session.get(SESSION_KEY, 0) > time.time()


def test_a_wrong_password_stays_on_the_page_and_says_so(ada):
    response = ada.post("/sudo/?next=/account/tokens/", {"password": "not it"})
    assert response.status_code == 200
    assert "That password is not correct." in response.content.decode()
    assert not in_sudo_mode(ada)
    event = AuditEvent.objects.get(action="auth.sudo.failed")
    assert event.actor_name == "ada"
    assert event.outcome == Outcome.FAILURE
    assert "not it" not in repr(event.details)
    assert not AuditEvent.objects.filter(action="auth.sudo.granted").exists()


def test_the_right_password_grants_sudo_and_goes_to_next(ada, settings):
    response = ada.post("/sudo/?next=/account/tokens/", {"password": PASSWORD})
    assert response.status_code == 302
    assert response.url == "/account/tokens/"
    assert in_sudo_mode(ada)
    assert ada.session[SESSION_KEY] <= time.time() + settings.SUDO_MODE_SECONDS
    assert AuditEvent.objects.get(action="auth.sudo.granted").actor_name == "ada"


def test_next_can_come_from_the_form_as_well(ada):
    response = ada.post("/sudo/", {"password": PASSWORD, "next": "/audit/?action=auth."})
    assert response.url == "/audit/?action=auth."


def test_the_page_carries_next_into_its_form(ada):
    page = ada.get("/sudo/?next=/account/tokens/").content.decode()
    assert '<input type="hidden" name="next" value="/account/tokens/">' in page


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example/", "http://evil.example/account/tokens/", "javascript:alert(1)"],
)
def test_an_off_site_next_is_not_followed(ada, next_url):
    page = ada.get("/sudo/", {"next": next_url}).content.decode()
    assert "evil.example" not in page
    assert '<input type="hidden" name="next" value="/">' in page
    response = ada.post("/sudo/", {"password": PASSWORD, "next": next_url})
    assert response.status_code == 302
    assert response.url == "/"
    response = ada.post(f"/sudo/?next={next_url}", {"password": PASSWORD})
    assert response.url == "/"


def test_sudo_mode_runs_out(ada):
    ada.post("/sudo/", {"password": PASSWORD})
    assert in_sudo_mode(ada)
    session = ada.session
    session[SESSION_KEY] = time.time() - 1
    session.save()
    response = ada.post("/account/tokens/new/", {"name": "ci", "scopes": ["view"]})
    assert response.status_code == 302
    assert response.url.startswith("/sudo/")


def test_sudo_mode_ends_with_the_session(ada, users):
    ada.post("/sudo/", {"password": PASSWORD})
    ada.post("/logout/")
    ada.force_login(users["admin"])
    assert not in_sudo_mode(ada)


def test_sudo_mode_belongs_to_one_session(ada, users):
    ada.post("/sudo/", {"password": PASSWORD})
    other_session = client_for(users["admin"])
    assert not in_sudo_mode(other_session)
    response = other_session.post("/account/tokens/new/", {"name": "ci", "scopes": ["view"]})
    assert response.url.startswith("/sudo/")


def test_guessing_the_password_is_throttled_even_with_a_stolen_session(ada, settings):
    settings.LOGIN_FAILURES_ALLOWED = 3
    for _ in range(3):
        ada.post("/sudo/", {"password": "guess"})
    response = ada.post("/sudo/", {"password": PASSWORD})
    assert "Too many wrong passwords" in response.content.decode()
    assert not in_sudo_mode(ada)
