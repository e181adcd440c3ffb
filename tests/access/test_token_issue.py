"""Issuing a token and reading the Bearer header: the lifetime's bounds, the shape of the raw value,
which tokens are active, and that only /api/ requests are authenticated by a token."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from opsconsole.access.models import TOKEN_PREFIX, ApiToken
from opsconsole.audit.models import AuditEvent, Outcome

pytestmark = pytest.mark.django_db


def test_a_token_lives_from_one_day_to_the_longest_allowed(users):
    for days in (1, settings.API_TOKEN_MAX_DAYS):
        token, _ = ApiToken.issue(f"ci-{days}", ["view"], created_by=users["admin"], lifetime_days=days)
        assert token.expires_at - token.created_at == timedelta(days=days)
    for days in (0, settings.API_TOKEN_MAX_DAYS + 1):
        with pytest.raises(
            ValueError, match=f"^A token lives from 1 to {settings.API_TOKEN_MAX_DAYS} days, not {days}.$"
        ):
            ApiToken.issue("ci", ["view"], created_by=users["admin"], lifetime_days=days)
    assert ApiToken.objects.count() == 2


def test_a_token_reaches_every_environment_or_the_ones_named_not_both(users, staging):
    with pytest.raises(ValueError) as refused:
        ApiToken.issue("ci", ["view"], [staging], all_environments=True)
    assert str(refused.value) == "A token reaches either every environment or the ones named, not both."
    assert not ApiToken.objects.exists()


def test_the_raw_value_is_the_prefix_and_256_random_bits_and_its_start_is_kept(users):
    token, raw = ApiToken.issue("ci", ["view"], created_by=users["admin"])
    assert raw.startswith(TOKEN_PREFIX) and len(raw) == len(TOKEN_PREFIX) + 43  # 32 bytes, base64url
    assert token.prefix == raw[:10]


def test_an_expired_token_is_not_active(users):
    live, _ = ApiToken.issue("live", ["view"], created_by=users["admin"])
    expired, _ = ApiToken.issue("expired", ["view"], created_by=users["admin"])
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert list(ApiToken.objects.active()) == [live]


def test_an_api_request_without_a_token_is_told_to_authenticate(db):
    response = Client().get("/api/v1/runs")
    assert response.status_code == 401
    assert response.json()["error"] == "Authenticate with an API token (Authorization: Bearer ...)."


def test_a_bearer_token_on_a_page_is_ignored(users):
    token, raw = ApiToken.issue("ci", ["view"], created_by=users["admin"])
    response = Client().get("/runs/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 302 and "/login" in response["Location"]
    token.refresh_from_db()
    assert token.last_used_at is None


def test_a_token_request_needs_no_csrf_token(users):
    _, raw = ApiToken.issue("ci", ["run"], created_by=users["admin"])
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/v1/runs",
        data={"kind": "maintenance.selftest", "params": {"lines": 1, "delay_ms": 0}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 201, response.content


def test_a_refused_token_request_is_audited_under_the_tokens_name(users):
    _, raw = ApiToken.issue("ci", ["view"], created_by=users["admin"])
    response = Client().post(
        "/api/v1/runs",
        data={"kind": "maintenance.selftest", "params": {"lines": 1, "delay_ms": 0}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 403
    assert AuditEvent.objects.filter(outcome=Outcome.DENIED).values_list("actor_name", flat=True)[0] == "token:ci"
