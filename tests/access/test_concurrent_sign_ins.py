"""Guesses sent at the same moment, each on its own connection: no more passwords are checked than
LOGIN_FAILURES_ALLOWED, at the sign-in form and at the re-authentication prompt alike; the rest
are refused without a check. (Counted after the check, 12 guesses all passed a limit of 5.)"""

import threading
import time

import pytest
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection
from django.test import Client

from opsconsole.audit.models import AuditEvent
from tests.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)

GUESSES = 12
ALLOWED = 5


def at_once(send) -> list:
    """Call send(index) from GUESSES threads released together; their answers, in order."""
    barrier = threading.Barrier(GUESSES)
    answers: list = [None] * GUESSES

    def guess(index: int) -> None:
        try:
            barrier.wait(10)
            answers[index] = send(index)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(index,)) for index in range(GUESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


class SlowCheck:
    """Counts password checks and makes each take a while, as a real hash does, so that every
    guess is still being checked while the others arrive. `function` stands in for `check`
    (a plain function, so it also binds as a method)."""

    def __init__(self, check):
        self.calls = 0
        lock = threading.Lock()

        def function(*args, **kwargs):
            with lock:
                self.calls += 1
            time.sleep(0.3)
            return check(*args, **kwargs)

        self.function = function


def test_concurrent_sign_in_guesses_cannot_pass_the_limit(users, settings, monkeypatch):
    settings.LOGIN_FAILURES_ALLOWED = ALLOWED
    authenticate = SlowCheck(auth_forms.authenticate)
    monkeypatch.setattr(auth_forms, "authenticate", authenticate.function)

    def send(index: int) -> str:
        client = Client(REMOTE_ADDR=f"198.51.100.{index + 1}")
        return client.post("/login/", {"username": "dana", "password": f"guess {index}"}).content.decode()

    pages = at_once(send)
    assert authenticate.calls == ALLOWED
    assert AuditEvent.objects.filter(action="auth.login.failed").count() == ALLOWED
    refused = [page for page in pages if "Too many failed sign-ins" in page]
    assert len(refused) == GUESSES - ALLOWED
    assert AuditEvent.objects.filter(action="auth.login.throttled").count() == GUESSES - ALLOWED  # one per address


def test_concurrent_guesses_at_the_password_prompt_cannot_pass_the_limit(users, settings, monkeypatch):
    settings.LOGIN_FAILURES_ALLOWED = ALLOWED
    check_password = SlowCheck(AbstractBaseUser.check_password)
    monkeypatch.setattr(AbstractBaseUser, "check_password", check_password.function)
    stolen = client_for(users["admin"]).cookies

    def send(index: int) -> str:
        client = Client()
        client.cookies = stolen
        return client.post("/sudo/", {"password": f"guess {index}"}).content.decode()

    pages = at_once(send)
    assert check_password.calls == ALLOWED
    assert AuditEvent.objects.filter(action="auth.sudo.failed").count() == ALLOWED
    assert sum("Too many wrong passwords" in page for page in pages) == GUESSES - ALLOWED
    assert AuditEvent.objects.filter(action="auth.sudo.throttled").count() == 1  # one session, one address
