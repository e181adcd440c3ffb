"""Login throttling: after LOGIN_FAILURES_ALLOWED failures a username is locked out, even with
the right password; other usernames are not; spelling variants of the name do not get round it."""

import datetime as dt
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from opsconsole.audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed sign-ins. Wait a few minutes and try again."


@pytest.fixture(autouse=True)
def three_failures_allowed(settings):
    settings.LOGIN_FAILURES_ALLOWED = 3
    settings.LOGIN_LOCKOUT_SECONDS = 900


def sign_in(username: str, password: str, address: str = "198.51.100.1"):
    client = Client(REMOTE_ADDR=address)
    response = client.post("/login/", {"username": username, "password": password})
    return response, client


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(username: str, times: int, address: str = "198.51.100.1") -> None:
    for _ in range(times):
        response, _ = sign_in(username, "wrong password", address)
        assert response.status_code == 200
        assert LOCKED not in response.content.decode()


def test_the_right_password_is_refused_after_too_many_failures(users):
    fail("dana", 3)
    response, client = sign_in("dana", PASSWORD)
    assert response.status_code == 200
    assert LOCKED in response.content.decode()
    assert not signed_in(client)
    assert not AuditEvent.objects.filter(action="auth.login").exists()


def test_fewer_failures_than_the_limit_do_not_lock_out(users):
    fail("dana", 2)
    response, client = sign_in("dana", PASSWORD)
    assert response.status_code == 302
    assert signed_in(client)


def test_a_locked_out_username_does_not_lock_out_others(users):
    fail("dana", 3)
    response, client = sign_in("vera", PASSWORD)
    assert response.status_code == 302
    assert signed_in(client)


def test_the_lockout_applies_from_any_address(users):
    fail("dana", 3, address="198.51.100.1")
    response, client = sign_in("dana", PASSWORD, address="192.0.2.99")
    assert LOCKED in response.content.decode()
    assert not signed_in(client)


@pytest.mark.parametrize("variant", ["dana ", " dana", "\tdana\n", "ｄａｎａ"], ids=repr)
def test_spelling_the_username_differently_does_not_get_round_the_lockout(users, variant):
    fail("dana", 3)
    response, client = sign_in(variant, PASSWORD)
    assert LOCKED in response.content.decode()
    assert not signed_in(client)


@pytest.mark.parametrize("variant", ["dana ", "ｄａｎａ"], ids=repr)
def test_failures_under_a_variant_spelling_count_against_the_username(users, variant):
    fail(variant, 3)
    response, client = sign_in("dana", PASSWORD)
    assert LOCKED in response.content.decode()
    assert not signed_in(client)


def test_failures_older_than_the_lockout_window_no_longer_count(users, settings):
    long_ago = timezone.now() - dt.timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS + 1)
    with mock.patch("django.utils.timezone.now", return_value=long_ago):
        fail("dana", 3)
    response, client = sign_in("dana", PASSWORD)
    assert response.status_code == 302
    assert signed_in(client)


def test_one_address_failing_across_many_accounts_is_locked_out_too(users):
    for number in range(12):  # four times the per-name limit, each name under it
        fail(f"guess{number}", 1, address="192.0.2.66")
    response, client = sign_in("dana", PASSWORD, address="192.0.2.66")
    assert LOCKED in response.content.decode()
    assert not signed_in(client)
    response, client = sign_in("dana", PASSWORD, address="192.0.2.67")
    assert signed_in(client)


def test_a_throttled_attempt_is_not_counted_as_another_failure(users):
    fail("dana", 3)
    sign_in("dana", "wrong password")
    sign_in("dana", PASSWORD)
    assert AuditEvent.objects.filter(action="auth.login.failed").count() == 3
