"""Shared fixtures: named users by role, environments, signed-in clients."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from opsconsole.access.models import Role, RoleBinding
from opsconsole.environments.models import Environment, Tier

PASSWORD = "correct horse battery staple"


@pytest.fixture
def staging(db):
    return Environment.objects.create(name="staging", tier=Tier.STAGING)


@pytest.fixture
def production(db):
    return Environment.objects.create(name="production", tier=Tier.PRODUCTION)


def make_user(username: str, role: str | None = None, environment=None, **extra):
    user = get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD, **extra)
    if role:
        RoleBinding.objects.create(user=user, role=role, environment=environment)
    return user


@pytest.fixture
def users(db, staging):
    """One user per role, each bound in staging only (admin and viewer everywhere)."""
    return {
        "viewer": make_user("vera", Role.VIEWER),
        "deployer": make_user("dana", Role.DEPLOYER, staging),
        "approver": make_user("arthur", Role.APPROVER, staging),
        "backup_operator": make_user("bob", Role.BACKUP_OPERATOR, staging),
        "dr_operator": make_user("dora", Role.DR_OPERATOR, staging),
        "admin": make_user("ada", Role.ADMIN),
        "nobody": make_user("norole"),
        "superuser": make_user("root", is_superuser=True, is_staff=True),
    }


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client_(users):
    return client_for(users["admin"])


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The default PBKDF2 takes ~0.5 s per user; tests create many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def stop_server(process: subprocess.Popen, grace: float = 30) -> None:
    """Stop a server a fixture started: SIGTERM, then SIGKILL if it is still shutting down after
    `grace` seconds (a loaded machine can take more than 10 s to stop a moto server)."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class LocalCounter:
    """audit.refusals' Redis counter in one process: each test counts its own refused requests."""

    def __init__(self):
        self.windows: dict[int, dict[str, int]] = {}

    def add(self, window: int, key: list[str]) -> int:
        counts = self.windows.setdefault(window, {})
        field = json.dumps(key)
        counts[field] = counts.get(field, 0) + 1
        return counts[field]

    def take_finished(self, before: int):
        finished = {window: self.windows.pop(window) for window in list(self.windows) if window < before}
        for window, counts in finished.items():
            for field, count in counts.items():
                yield window, json.loads(field), count


@pytest.fixture(autouse=True)
def fresh_refusal_counts(monkeypatch):
    """Each test counts its own refused requests (audit.refusals coalesces them per minute)."""
    from opsconsole.audit import refusals

    monkeypatch.setattr(refusals, "_counter", LocalCounter())


@pytest.fixture(autouse=True)
def fresh_sign_in_counts(monkeypatch):
    """Each test counts its own sign-in attempts: access.throttle keeps them in Redis, which the
    database rollback does not reach, so each test gets keys of its own (they expire)."""
    from opsconsole.access import throttle

    monkeypatch.setattr(throttle, "KEY_PREFIX", f"{throttle.KEY_PREFIX}test-{uuid.uuid4().hex}:")
