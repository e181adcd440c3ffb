"""The runs API: start a run with a token, read it and its events, cancel it."""

import json

import pytest

from opsconsole.access.models import ApiToken
from opsconsole.runs.models import Run, Status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ci_token(users, staging):
    _, raw = ApiToken.issue("ci", ["view", "run"], [staging], created_by=users["admin"])
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def post(client, url, body, **headers):
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


def test_a_token_starts_a_run_and_reads_its_events(client, ci_token):
    response = post(
        client,
        "/api/v1/runs",
        {"kind": "maintenance.selftest", "environment": "staging", "params": {"lines": 2, "delay_ms": 0}},
        **ci_token,
    )
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]
    assert Run.objects.get(pk=run_id).requested_by_name == "token:ci"

    detail = client.get(f"/api/v1/runs/{run_id}", **ci_token).json()
    assert detail["status"] == Status.SUCCEEDED and detail["terminal"] is True

    events = client.get(f"/api/v1/runs/{run_id}/events?after=1", **ci_token).json()["events"]
    assert [e["seq"] for e in events] == list(range(2, 2 + len(events)))
    assert events[-1]["message"] == "Succeeded."


def test_a_token_cannot_start_runs_outside_its_environments(client, ci_token, production):
    response = post(client, "/api/v1/runs", {"kind": "maintenance.selftest", "environment": "production"}, **ci_token)
    assert response.status_code == 403
    assert not Run.objects.exists()
    # A name no environment has is refused the same way, so the token cannot tell which exist.
    unknown = post(client, "/api/v1/runs", {"kind": "maintenance.selftest", "environment": "mars"}, **ci_token)
    assert (unknown.status_code, unknown.json()) == (403, response.json())


def test_an_unknown_environment_is_a_404_for_a_token_that_sees_every_environment(client, users):
    _, raw = ApiToken.issue("all", ["view", "run"], created_by=users["admin"])
    body = {"kind": "maintenance.selftest", "environment": "mars"}
    response = post(client, "/api/v1/runs", body, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 404
    assert response.json() == {"error": "There is no environment called 'mars'.", "code": "not_found"}
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "nope"}, "There is no run kind called 'nope'"),
        ({"kind": "maintenance.selftest", "params": [1]}, "params must be a JSON object"),
        ({"kind": "maintenance.selftest", "environment": "staging", "params": {"lines": -1}}, "lines must be"),
    ],
)
def test_bad_requests_get_a_clear_400_and_change_nothing(client, ci_token, body, message):
    response = post(client, "/api/v1/runs", body, **ci_token)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Run.objects.exists()


def test_malformed_and_deeply_nested_json_is_rejected(client, ci_token):
    response = client.post("/api/v1/runs", "{not json", content_type="application/json", **ci_token)
    assert response.status_code == 400
    deep = {"kind": "maintenance.selftest", "params": {}}
    cursor = deep["params"]
    for _ in range(30):
        cursor["x"] = {}
        cursor = cursor["x"]
    response = post(client, "/api/v1/runs", deep, **ci_token)
    assert response.status_code == 400
    assert "nested deeper" in response.json()["error"]


def test_without_a_token_the_api_answers_401(client):
    assert client.get("/api/v1/runs").status_code == 401
    assert client.get("/api/v1/runs", HTTP_AUTHORIZATION="Bearer opc_wrong").status_code == 401


def test_cancelling_a_finished_run_is_a_conflict(client, ci_token):
    run_id = post(
        client,
        "/api/v1/runs",
        {"kind": "maintenance.selftest", "environment": "staging", "params": {"lines": 1, "delay_ms": 0}},
        **ci_token,
    ).json()["id"]
    response = client.post(f"/api/v1/runs/{run_id}/cancel", **ci_token)
    assert response.status_code == 409
    assert "already ended" in response.json()["error"]


def test_a_browser_session_must_present_the_csrf_token(users):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(users["admin"])
    response = post(client, "/api/v1/runs", {"kind": "maintenance.selftest"})
    assert response.status_code == 403
    assert not Run.objects.exists()
