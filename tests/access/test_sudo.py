"""Sudo mode: confirming the password again before a dangerous action, then going back."""

import json
import re
import time

import pytest
from django.contrib.messages import get_messages

from opsconsole.access.models import ApiToken
from opsconsole.access.sudo import PENDING_KEY, PENDING_SECONDS, SESSION_KEY
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


# --- A POST interrupted by the password prompt waits, then goes through as first sent -------------
TOKEN_FORM = {"name": "github-actions", "scopes": ["view"], "all_environments": "on"}


def interrupt(client, path: str = "/account/tokens/new/", form: dict | None = None) -> str:
    """POST a form without sudo mode; return the key it waits under on the password page."""
    response = client.post(path, form or TOKEN_FORM, HTTP_REFERER="http://testserver/account/tokens/")
    assert response.status_code == 302 and response.url.startswith("/sudo/")
    page = client.get(response.url).content.decode()
    match = re.search(r'name="sudo_resume" value="([^"]+)"', page)
    return match.group(1) if match else ""


def resume(client, key: str, password: str = PASSWORD, path: str = "/account/tokens/new/"):
    return client.post(path, {"password": password, "next": "/account/tokens/", "sudo_resume": key})


def test_the_waiting_form_keeps_what_was_typed_and_no_password_or_csrf_token(ada):
    key = interrupt(ada, form={**TOKEN_FORM, "csrfmiddlewaretoken": "x" * 64})
    waiting = ada.session[PENDING_KEY][key]
    assert waiting["path"] == "/account/tokens/new/"
    assert waiting["fields"] == {"name": ["github-actions"], "scopes": ["view"], "all_environments": ["on"]}
    resume(ada, key)
    assert PASSWORD not in json.dumps(dict(ada.session.items()))
    assert key not in ada.session[PENDING_KEY]  # sent once, then gone


def test_the_password_page_posts_to_the_interrupted_url_and_says_the_form_is_kept(ada):
    response = ada.post("/account/tokens/new/", TOKEN_FORM, HTTP_REFERER="http://testserver/account/tokens/")
    page = ada.get(response.url).content.decode()
    assert '<form method="post" action="/account/tokens/new/">' in page
    assert "Your form is kept as you filled it in" in page
    assert '<input type="hidden" name="next" value="http://testserver/account/tokens/">' in page


def test_a_wrong_password_at_the_interrupted_url_keeps_the_form_waiting(ada):
    key = interrupt(ada)
    response = resume(ada, key, password="not it")
    page = response.content.decode()
    assert response.status_code == 200
    assert "That password is not correct." in page
    assert f'name="sudo_resume" value="{key}"' in page
    assert not in_sudo_mode(ada)
    assert not ApiToken.objects.exists()
    assert AuditEvent.objects.get(action="auth.sudo.failed").outcome == Outcome.FAILURE

    assert resume(ada, key).status_code == 302
    assert ApiToken.objects.get().name == "github-actions"
    assert AuditEvent.objects.filter(action="auth.sudo.granted").count() == 1


def test_a_waiting_form_is_sent_once(ada):
    key = interrupt(ada)
    resume(ada, key)
    response = resume(ada, key)  # the password page sent twice
    assert response.status_code == 302 and response.url == "/account/tokens/"
    assert ApiToken.objects.count() == 1
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["Your password is confirmed, but the form waited too long: send it again."]


def test_a_waiting_form_goes_only_to_the_url_it_was_sent_to(ada):
    key = interrupt(ada)
    response = resume(ada, key, path="/dr/staging/failover/")  # sudo-protected too; no DR plan: 404 if it ran
    assert response.status_code == 302 and response.url == "/account/tokens/"
    assert in_sudo_mode(ada)
    assert resume(ada, key).status_code == 302
    assert not ApiToken.objects.exists()  # the key was spent, not carried elsewhere


def test_a_form_waits_at_most_a_quarter_of_an_hour(ada):
    key = interrupt(ada)
    session = ada.session
    session[PENDING_KEY][key]["at"] -= PENDING_SECONDS + 1
    session.save()
    assert "sudo_resume" not in ada.get(f"/sudo/?resume={key}").content.decode()
    resume(ada, key)
    assert in_sudo_mode(ada)
    assert not ApiToken.objects.exists()


def test_a_form_with_a_secret_looking_field_is_not_kept(ada):
    response = ada.post("/account/tokens/new/", {**TOKEN_FORM, "api_key": "hunter2"})
    assert response.status_code == 302 and "resume=" not in response.url
    assert "hunter2" not in json.dumps(dict(ada.session.items()))


def test_another_session_cannot_send_a_waiting_form(ada, users):
    key = interrupt(ada)
    other = client_for(users["admin"])
    resume(other, key)
    assert in_sudo_mode(other)
    assert not ApiToken.objects.exists()
