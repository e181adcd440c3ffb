"""Every refused state-changing request is an audit event with outcome denied and its code; a flood
of the same refusal is one event and a count, so it cannot flood the chain."""

import json
import time
from unittest import mock

import pytest
from django.test import Client

from opsconsole.audit import refusals
from opsconsole.audit.models import AuditEvent, Outcome
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def denied():
    return list(AuditEvent.objects.filter(outcome=Outcome.DENIED).order_by("seq"))


def test_a_refused_api_request_is_audited_with_its_code(users, production):
    client = client_for(users["deployer"])  # a deployer in staging only

    response = client.post(
        "/api/v1/environments/production/deploy", json.dumps({"release_id": 1}), content_type="application/json"
    )

    assert response.status_code == 403
    [event] = denied()
    assert event.action == "request.refused" and event.actor_name == "dana"
    assert event.target == "api/v1/environments/<slug:name>/deploy"
    assert event.details["code"] == response.json()["code"] and event.details["method"] == "POST"


def test_a_refusal_a_page_shows_as_an_error_message_is_audited(users, staging):
    response = client_for(users["deployer"]).post("/environments/staging/lock/", {"action": "unlock"})

    assert response.status_code == 302
    [event] = denied()
    assert event.action == "request.refused" and event.actor_name == "dana"
    assert event.details["code"] == "refused" and "not locked" in event.details["error"]


def test_a_flood_of_one_refusal_is_one_event_and_then_a_count(users, production):
    client = client_for(users["deployer"])
    for _ in range(50):
        client.post("/api/v1/environments/production/rollback", "{}", content_type="application/json")
    assert [event.action for event in denied()] == ["request.refused"]

    assert refusals.flush_finished(before=int(time.time()) // refusals.WINDOW_SECONDS + 1) == 1

    first, summary = denied()
    assert summary.action == "request.refused.coalesced" and summary.actor_name == "dana"
    assert summary.details["count"] == 49 and summary.details["code"] == first.details["code"]
    assert refusals.flush_finished(before=int(time.time()) // refusals.WINDOW_SECONDS + 1) == 0


def test_different_principals_routes_and_codes_are_each_audited(users, production):
    for user in ("deployer", "viewer"):
        client_for(users[user]).post("/api/v1/environments/production/deploy", "{}", content_type="application/json")
    client_for(users["deployer"]).post(
        "/api/v1/environments/production/rollback", "{}", content_type="application/json"
    )

    assert len(denied()) == 3


def test_a_refusal_the_view_audits_itself_is_not_audited_twice(users, staging):
    response = client_for(users["deployer"]).post(
        "/environments/staging/runs/999/decide/", {"decision": "approve"}
    )  # no such run: a 404, not audited; then a failed sign-in, audited by the sign-in signal only
    assert response.status_code == 404
    response = Client().post("/login/", {"username": "dana", "password": "wrong"})

    assert response.status_code == 200
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert "auth.login.failed" in actions and "request.refused" not in actions


def test_malformed_input_is_not_a_refusal(users, staging):
    response = client_for(users["deployer"]).post(
        "/api/v1/environments/staging/deploy", "not json", content_type="application/json"
    )

    assert response.status_code == 400
    assert denied() == []


def test_a_read_is_never_audited_as_a_refusal(users, production):
    assert client_for(users["deployer"]).get("/api/v1/environments/production/deploy").status_code in (403, 405)
    assert denied() == []


def test_counts_in_redis_are_taken_once(settings):
    counter = refusals.RedisCounter(settings.REDIS_URL)
    window = 1_000_000 + int(time.time()) % 1000  # a minute long past, used by no real refusal
    counter.client.delete(f"{refusals.KEY_PREFIX}{window}")
    key = ["dana", "api/v1/x", "forbidden"]

    assert [counter.add(window, key) for _ in range(3)] == [1, 2, 3]
    assert counter.add(window, ["vera", "api/v1/x", "forbidden"]) == 1

    taken = {tuple(k): n for w, k, n in counter.take_finished(before=window + 1) if w == window}
    assert taken == {("dana", "api/v1/x", "forbidden"): 3, ("vera", "api/v1/x", "forbidden"): 1}
    assert [entry for entry in counter.take_finished(before=window + 1) if entry[0] == window] == []


def test_without_redis_every_refusal_is_audited(users, production, monkeypatch):
    monkeypatch.setattr(refusals, "_counter", refusals.FailOpenCounter(refusals.RedisCounter("redis://127.0.0.1:9/0")))
    client = client_for(users["deployer"])
    for _ in range(3):
        client.post("/api/v1/environments/production/deploy", "{}", content_type="application/json")

    assert len(denied()) == 3


def test_without_a_redis_url_every_refusal_is_audited(users, production, monkeypatch, settings):
    settings.REDIS_URL = ""
    monkeypatch.setattr(refusals, "_counter", None)
    client = client_for(users["deployer"])
    for _ in range(3):
        client.post("/api/v1/environments/production/deploy", "{}", content_type="application/json")

    assert len(denied()) == 3


def test_a_coalesced_count_belongs_to_its_principal_not_to_the_request_that_writes_it(users, production):
    dana, vera = client_for(users["deployer"]), client_for(users["viewer"])
    for _ in range(3):
        dana.post("/api/v1/environments/production/rollback", "{}", content_type="application/json")
    minute = int(time.time()) // refusals.WINDOW_SECONDS
    with mock.patch("time.time", return_value=(minute + 1) * refusals.WINDOW_SECONDS + 1):
        vera.post(
            "/api/v1/environments/production/rollback",
            "{}",
            content_type="application/json",
            REMOTE_ADDR="10.0.0.2",
        )

    summary = AuditEvent.objects.get(action="request.refused.coalesced")
    assert summary.actor_name == "dana" and summary.details["count"] == 2
    assert summary.actor_id is None and summary.ip is None and summary.request_id == ""


def test_anonymous_refusals_from_each_address_are_each_named(db, production):
    for address in ("10.0.0.1", "10.0.0.1", "10.0.0.2"):
        Client().post(
            "/api/v1/environments/production/deploy", "{}", content_type="application/json", REMOTE_ADDR=address
        )

    assert sorted(event.ip for event in denied()) == ["10.0.0.1", "10.0.0.2"]


def test_a_page_that_refuses_by_showing_the_form_again_is_audited(users, staging):
    """The Restore form comes back (200) with an error when the target is mistyped."""
    from backups.models import Backup, BackupStatus, Kind

    backup = Backup.objects.create(
        environment=staging, kind=Kind.PG_DUMP, status=BackupStatus.AVAILABLE, identifier="s3://b/k"
    )
    client = client_for(users["backup_operator"])
    session = client.session
    session["sudo_until"] = 10**12  # re-authenticated
    session.save()
    response = client.post(f"/backups/{backup.pk}/restore/", {"target": "scratch", "confirm": "scrach"})

    assert response.status_code == 200
    [event] = denied()
    assert event.details["code"] == "refused" and event.actor_name == "bob"
