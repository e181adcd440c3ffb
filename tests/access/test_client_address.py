"""The client's address: REMOTE_ADDR without proxies; behind TRUSTED_PROXY_HOPS proxies, the
address the outermost of them saw, never an entry the client wrote itself. The audit log
records that address."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, RequestFactory

from opsconsole.audit.models import AuditEvent
from opsconsole.clientip import client_ip

ALB = "10.0.3.17"  # the load balancer, as the web process sees it
ROOT = Path(__file__).resolve().parents[2]


def address_of(hops: int, settings, forwarded: str | None = None, remote: str = ALB) -> str | None:
    settings.TRUSTED_PROXY_HOPS = hops
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return client_ip(RequestFactory().get("/", REMOTE_ADDR=remote, **headers))


def test_without_trusted_proxies_x_forwarded_for_is_ignored(settings):
    assert address_of(0, settings, "203.0.113.9") == ALB
    assert address_of(0, settings) == ALB


def test_behind_one_proxy_the_client_is_the_address_it_saw(settings):
    assert address_of(1, settings, "203.0.113.9") == "203.0.113.9"


def test_entries_the_client_wrote_itself_are_not_read(settings):
    # The client sent "X-Forwarded-For: 192.0.2.1, 192.0.2.2"; the ALB appended what it saw.
    assert address_of(1, settings, "192.0.2.1, 192.0.2.2, 203.0.113.9") == "203.0.113.9"
    assert address_of(2, settings, "192.0.2.1, 203.0.113.9, 10.0.1.4") == "203.0.113.9"


@pytest.mark.parametrize(
    ("hops", "forwarded"),
    [(1, None), (1, ""), (1, " "), (2, "203.0.113.9"), (1, "unknown"), (1, "203.0.113.9:443"), (1, "192.0.2.1, ")],
    ids=["no header", "empty", "blank", "fewer entries than hops", "not an address", "with a port", "empty entry"],
)
def test_a_header_that_did_not_come_through_the_proxies_gives_the_connecting_address(settings, hops, forwarded):
    assert address_of(hops, settings, forwarded) == ALB


def test_ipv6_addresses_are_kept_as_the_database_returns_them(settings):
    assert address_of(1, settings, "2001:DB8:0:0:0:0:0:7") == "2001:db8::7"
    assert address_of(0, settings, remote="2001:DB8::A") == "2001:db8::a"


def test_no_request_or_no_address_is_none(settings):
    assert client_ip(None) is None
    assert address_of(0, settings, remote="") is None


@pytest.mark.django_db
def test_the_audit_log_records_the_client_behind_the_proxy(settings):
    settings.TRUSTED_PROXY_HOPS = 1
    client = Client(REMOTE_ADDR=ALB, HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.9")
    client.post("/login/", {"username": "mallory", "password": "guess"})
    assert AuditEvent.objects.get(action="auth.login.failed").ip == "203.0.113.9"


@pytest.mark.django_db
def test_without_trusted_proxies_a_forged_header_does_not_reach_the_audit_log(settings):
    settings.TRUSTED_PROXY_HOPS = 0
    client = Client(REMOTE_ADDR="198.51.100.20", HTTP_X_FORWARDED_FOR="192.0.2.1")
    client.post("/login/", {"username": "mallory", "password": "guess"})
    assert AuditEvent.objects.get(action="auth.login.failed").ip == "198.51.100.20"


@pytest.mark.parametrize(
    ("value", "message"),
    [("-1", "TRUSTED_PROXY_HOPS: must be at least 0, got -1"), ("one", "TRUSTED_PROXY_HOPS: expected a whole number")],
)
def test_a_bad_number_of_hops_fails_at_start_naming_the_variable(value, message):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSCONSOLE_", "DEBUG"))}
    env.update(SECRET_KEY="k" * 40, ALLOWED_HOSTS="console.example.com", OPSCONSOLE_QUEUE="inline")
    env.update(DATABASE_URL="sqlite:////tmp/opsconsole-hops-test.sqlite3", TRUSTED_PROXY_HOPS=value)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
