"""The re-authentication prompt is throttled as sign-in is: LOGIN_FAILURES_ALLOWED wrong passwords
for a user refuse further attempts, refusals are audited, right passwords are not counted."""

import pytest

from opsconsole.audit.models import AuditEvent, Outcome
from tests.conftest import PASSWORD, client_for

pytestmark = pytest.mark.django_db

LOCKED = "Too many wrong passwords. Wait a few minutes and try again."


@pytest.fixture(autouse=True)
def three_failures_allowed(settings):
    settings.LOGIN_FAILURES_ALLOWED = 3


@pytest.fixture
def ada(users):
    return client_for(users["admin"])


def confirm(client, password: str) -> str:
    return client.post("/sudo/", {"password": password}, REMOTE_ADDR="198.51.100.4").content.decode()


def test_a_throttled_attempt_is_audited_without_the_password(ada):
    for _ in range(3):
        assert LOCKED not in confirm(ada, "guess")
    assert LOCKED in confirm(ada, PASSWORD)
    event = AuditEvent.objects.get(action="auth.sudo.throttled")
    assert event.actor_name == "ada"
    assert event.outcome == Outcome.DENIED
    assert event.target == "user:ada"
    assert event.details == {"refused": 1}
    assert event.ip == "198.51.100.4"
    assert not AuditEvent.objects.filter(details__icontains=PASSWORD).exists()
    assert not AuditEvent.objects.filter(action="auth.sudo.granted").exists()


def test_a_flood_of_throttled_attempts_is_one_event(ada):
    for _ in range(3):
        confirm(ada, "guess")
    for _ in range(6):
        assert LOCKED in confirm(ada, "guess")
    assert AuditEvent.objects.filter(action="auth.sudo.throttled").count() == 1
    assert AuditEvent.objects.filter(action="auth.sudo.failed").count() == 3


def test_right_passwords_are_not_counted(ada):
    for _ in range(5):
        assert LOCKED not in confirm(ada, PASSWORD)
    confirm(ada, "guess")
    confirm(ada, "guess")
    confirm(ada, PASSWORD)
    assert AuditEvent.objects.filter(action="auth.sudo.granted").count() == 6


def test_without_redis_wrong_passwords_are_counted_from_the_audit_log(ada, settings):
    settings.REDIS_URL = None
    for _ in range(3):
        confirm(ada, "guess")
    assert LOCKED in confirm(ada, PASSWORD)
    assert AuditEvent.objects.filter(action="auth.sudo.throttled").count() == 1
