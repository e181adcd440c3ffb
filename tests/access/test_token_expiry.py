"""API tokens expire: API_TOKEN_DEFAULT_DAYS unless their creator picks a lifetime, never more than
API_TOKEN_MAX_DAYS; an expired token gets a 401 saying when it expired; the tokens page shows each
token's expiry and highlights the ones about to expire."""

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from opsconsole.access.models import ApiToken
from opsconsole.access.permissions import allowed, visible_environment_ids
from opsconsole.audit.models import AuditEvent
from tests.conftest import client_for
from tests.test_configuration import start

pytestmark = pytest.mark.django_db

EVERYWHERE = {"name": "ci", "scopes": ["view"], "all_environments": "on"}
TOKEN_ROW = re.compile(r'<tr class="([^"]*)">\s*<td>([^<]+)</td>(.*?)</tr>', re.S)


def in_sudo_mode(client) -> Client:
    session = client.session
    session["sudo_until"] = time.time() + 300
    session.save()
    return client


def api(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def expire(token: ApiToken, at: datetime) -> ApiToken:
    ApiToken.objects.filter(pk=token.pk).update(expires_at=at)
    return ApiToken.objects.get(pk=token.pk)


def test_a_new_token_expires_after_the_default_number_of_days(users, settings):
    settings.API_TOKEN_DEFAULT_DAYS = 30
    token, _ = ApiToken.issue("ci", ["view"], created_by=users["admin"])
    assert token.expires_at - token.created_at == timedelta(days=30)

    in_sudo_mode(client_for(users["admin"])).post("/account/tokens/new/", {**EVERYWHERE, "name": "from-the-page"})
    made = ApiToken.objects.get(name="from-the-page")
    assert made.expires_at - made.created_at == timedelta(days=30)


def test_the_form_offers_the_default_lifetime_and_says_the_maximum(users, settings):
    settings.API_TOKEN_DEFAULT_DAYS, settings.API_TOKEN_MAX_DAYS = 45, 180
    page = client_for(users["admin"]).get("/account/tokens/").content.decode()
    assert '<input name="lifetime_days" type="number" min="1" max="180" value="45">' in page
    assert "at most 180" in page


def test_the_creator_may_choose_a_shorter_lifetime(users):
    admin = in_sudo_mode(client_for(users["admin"]))
    admin.post("/account/tokens/new/", {**EVERYWHERE, "lifetime_days": "7"})
    token = ApiToken.objects.get()
    assert token.expires_at - token.created_at == timedelta(days=7)
    event = AuditEvent.objects.get(action="access.token.created")
    assert event.details["lifetime_days"] == 7
    assert event.details["expires_at"] == token.expires_at.isoformat()


def test_a_lifetime_above_the_maximum_is_refused_and_nothing_is_created(users, settings):
    settings.API_TOKEN_MAX_DAYS = 365
    admin = in_sudo_mode(client_for(users["admin"]))
    before = AuditEvent.objects.count()
    response = admin.post("/account/tokens/new/", {**EVERYWHERE, "lifetime_days": "366"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "A token may live at most 365 days here (API_TOKEN_MAX_DAYS); choose 365 or fewer" in page
    assert 'value="366"' in page  # the form comes back as typed
    assert not ApiToken.objects.exists()
    assert AuditEvent.objects.count() == before
    with pytest.raises(ValueError, match="from 1 to 365 days"):
        ApiToken.issue("shell", ["view"], lifetime_days=366)
    assert not ApiToken.objects.exists()


def test_an_expired_token_gets_a_401_saying_when_it_expired(users, staging):
    token, raw = ApiToken.issue("ci", ["view"], created_by=users["admin"])
    assert api(raw).get("/api/v1/runs").status_code == 200
    token = expire(token, datetime(2025, 3, 1, 9, 30, tzinfo=UTC))
    used = token.last_used_at

    response = api(raw).get("/api/v1/runs")
    assert response.status_code == 401
    assert response.json() == {
        "error": "The API token expired on 2025-03-01 09:30 UTC. Ask an admin for a new one on the API tokens page.",
        "code": "token_expired",
    }
    assert ApiToken.objects.get(pk=token.pk).last_used_at == used  # a refused use is no use
    assert not allowed(token, "view", staging)
    assert visible_environment_ids(token) == set()


def test_a_token_works_until_its_expiry_and_not_after(users):
    token, raw = ApiToken.issue("ci", ["view"], created_by=users["admin"])
    expire(token, timezone.now() + timedelta(seconds=30))
    assert api(raw).get("/api/v1/runs").status_code == 200
    expire(token, timezone.now() - timedelta(seconds=1))
    assert api(raw).get("/api/v1/runs").status_code == 401


def test_a_revoked_token_that_also_expired_is_just_not_valid(users):
    token, raw = ApiToken.issue("ci", ["view"], created_by=users["admin"])
    token.revoke()
    expire(token, timezone.now() - timedelta(days=1))
    response = api(raw).get("/api/v1/runs")
    assert response.status_code == 401
    assert response.json()["error"] == "The API token is not valid or has been revoked."


def test_the_tokens_page_shows_when_each_token_expires(users):
    now = timezone.now()
    ApiToken.issue("fresh", ["view"], created_by=users["admin"])
    soon, _ = ApiToken.issue("soon", ["view"], created_by=users["admin"])
    expire(soon, now + timedelta(days=3, hours=1))
    gone, _ = ApiToken.issue("gone", ["view"], created_by=users["admin"])
    expire(gone, datetime(2025, 1, 15, 12, 0, tzinfo=UTC))

    page = client_for(users["admin"]).get("/account/tokens/").content.decode()
    rows = {name: (css, cells) for css, name, cells in TOKEN_ROW.findall(page)}
    assert rows["fresh"][0] == "" and "expires in 90 days" in rows["fresh"][1]
    assert rows["soon"][0] == "expiring"
    assert '<span class="badge warn">expires in 4 days</span>' in rows["soon"][1]
    assert rows["gone"][0] == "revoked expired" and "expired on 2025-01-15" in rows["gone"][1]
    assert "Revoke" not in rows["gone"][1]  # nothing left to revoke


def test_a_maximum_below_the_default_fails_at_start():
    result = start(API_TOKEN_DEFAULT_DAYS="90", API_TOKEN_MAX_DAYS="30")
    assert result.returncode == 2
    assert "API_TOKEN_MAX_DAYS: must be at least API_TOKEN_DEFAULT_DAYS (90), got 30" in result.stderr
