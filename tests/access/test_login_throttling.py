"""Login throttling: after LOGIN_FAILURES_ALLOWED failures a username is locked out, even with
the right password; other usernames are not; spelling variants of the name do not get round it.
An address is locked out after four times as many, counted by the client's address behind the
load balancer. Refusals are audited; without Redis the audit log's failures are counted."""

import datetime as dt
import time
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from opsconsole.access import throttle
from opsconsole.audit.models import AuditEvent, Outcome
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


def test_posts_without_a_password_take_no_attempt(users):
    """Nothing is checked, so nothing is counted: blank posts cannot lock a user out unseen."""
    for _ in range(6):
        response, _ = sign_in("dana", "")
        assert response.status_code == 200 and LOCKED not in response.content.decode()
    _, client = sign_in("dana", PASSWORD)
    assert signed_in(client)


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


def test_right_passwords_are_not_counted(users):
    # An office behind one address signs in all morning: only wrong passwords count.
    for _ in range(13):
        response, client = sign_in("dana", PASSWORD)
        assert signed_in(client)
    fail("dana", 2)
    assert signed_in(sign_in("dana", PASSWORD)[1])


def test_a_client_cannot_dodge_the_address_limit_by_writing_x_forwarded_for(users, settings):
    settings.TRUSTED_PROXY_HOPS = 0
    for number in range(12):
        client = Client(REMOTE_ADDR="192.0.2.66", HTTP_X_FORWARDED_FOR=f"198.51.100.{number}")
        client.post("/login/", {"username": f"guess{number}", "password": "wrong password"})
    response, client = sign_in("dana", PASSWORD, address="192.0.2.66")
    assert LOCKED in response.content.decode()


ALB = "10.0.3.17"


def via_load_balancer(username: str, password: str, client_address: str):
    client = Client(REMOTE_ADDR=ALB, HTTP_X_FORWARDED_FOR=f"192.0.2.250, {client_address}")
    return client.post("/login/", {"username": username, "password": password}), client


def test_behind_the_load_balancer_invented_usernames_lock_out_only_the_client_sending_them(users, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    settings.LOGIN_FAILURES_ALLOWED = 5
    for number in range(20):
        response, _ = via_load_balancer(f"invented{number}", "wrong password", "203.0.113.66")
        assert LOCKED not in response.content.decode()
    response, client = via_load_balancer("dana", PASSWORD, "203.0.113.66")
    assert LOCKED in response.content.decode() and not signed_in(client)
    response, client = via_load_balancer("dana", PASSWORD, "198.51.100.7")
    assert response.status_code == 302 and signed_in(client)
    event = AuditEvent.objects.get(action="auth.login.throttled")
    assert (event.ip, event.details["limit"]) == ("203.0.113.66", "address")


def test_without_trusted_proxy_hops_everyone_behind_the_load_balancer_is_one_client(users, settings):
    """Why TRUSTED_PROXY_HOPS must be set behind a load balancer (docs/operations.md)."""
    settings.TRUSTED_PROXY_HOPS = 0
    for number in range(12):
        via_load_balancer(f"invented{number}", "wrong password", "203.0.113.66")
    response, client = via_load_balancer("dana", PASSWORD, "198.51.100.7")
    assert LOCKED in response.content.decode()


def test_a_throttled_sign_in_is_audited_without_the_password(users):
    fail("dana", 3)
    response, _ = sign_in("dana", PASSWORD)
    assert LOCKED in response.content.decode()
    event = AuditEvent.objects.get(action="auth.login.throttled")
    assert event.outcome == Outcome.DENIED
    assert event.actor is None
    assert event.target == "user:dana"
    assert event.details == {"username": "dana", "limit": "username", "refused": 1}
    assert event.ip == "198.51.100.1"
    assert event.request_id == response["X-Request-ID"]
    assert not AuditEvent.objects.filter(details__icontains=PASSWORD).exists()


def test_a_flood_of_throttled_sign_ins_is_one_event_a_minute_carrying_the_count(users, monkeypatch):
    monkeypatch.setattr(throttle, "AUDIT_EVERY_SECONDS", 1)
    fail("dana", 3)
    for _ in range(5):
        sign_in("dana", "another guess")
    assert AuditEvent.objects.filter(action="auth.login.throttled").count() == 1
    sign_in("dana", "another guess", address="192.0.2.99")  # another address: its own first event
    assert AuditEvent.objects.filter(action="auth.login.throttled").count() == 2
    time.sleep(1.1)
    sign_in("dana", "another guess")
    latest = AuditEvent.objects.filter(action="auth.login.throttled").latest("seq")
    assert latest.ip == "198.51.100.1"
    assert latest.details["refused"] == 5  # the four counted since the first event, and this one


@pytest.mark.parametrize("redis_url", ["redis://127.0.0.1:1/0", None], ids=["redis down", "no redis"])
def test_without_redis_failures_are_counted_from_the_audit_log(users, settings, redis_url, caplog):
    settings.REDIS_URL = redis_url
    fail("dana", 3)
    response, client = sign_in("dana", PASSWORD)
    assert LOCKED in response.content.decode() and not signed_in(client)
    assert AuditEvent.objects.filter(action="auth.login.throttled").count() == 1
    sign_in("dana", PASSWORD)
    assert AuditEvent.objects.filter(action="auth.login.throttled").count() == 1  # one a minute still
    assert signed_in(sign_in("vera", PASSWORD)[1])
    if redis_url:
        assert "Redis did not answer" in caplog.text
