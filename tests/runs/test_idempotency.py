"""The one mechanism behind Idempotency-Key and the forms' one-time tokens (opsconsole/runs/
idempotency.py), and the generic POST /api/v1/runs honouring the header."""

from __future__ import annotations

import json
from unittest import mock

import pytest

from opsconsole.access.models import ApiToken
from opsconsole.runs.idempotency import Kept, KeyReused, fingerprint, once
from opsconsole.runs.models import IdempotencyKey, Run
from opsconsole.runs.services import Refused

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queued_only(settings):
    settings.OPSCONSOLE_QUEUE = "celery"
    with mock.patch("opsconsole.runs.services.check_queue"), mock.patch("opsconsole.runs.dispatch.dispatch"):
        yield


def test_a_kept_answer_has_its_secret_looking_values_masked(users):
    answer = {"id": 1, "params": {"password": "hunter2", "api_token": "abc", "tag": "v1"}}
    first = once(users["admin"], "k", fingerprint("a"), lambda: answer, lambda body: Kept(202, body))
    assert first == answer  # the caller itself sees what the action returned
    kept = once(users["admin"], "k", fingerprint("a"), lambda: pytest.fail("ran twice"), lambda body: None)
    assert kept.body == {"id": 1, "params": {"password": "********", "api_token": "********", "tag": "v1"}}
    assert "hunter2" not in json.dumps(list(IdempotencyKey.objects.values("body", "key")))


def test_another_request_with_a_used_key_is_refused(users):
    once(users["admin"], "k", fingerprint("a"), lambda: 1, lambda result: Kept(200, {}))
    with pytest.raises(KeyReused):
        once(users["admin"], "k", fingerprint("b"), lambda: 2, lambda result: Kept(200, {}))


def test_a_refusal_frees_the_key_and_keeps_what_else_the_request_wrote(users, staging):
    def refused():
        Run.objects.create(kind="maintenance.selftest")  # say, an audit event of the refusal
        raise Refused("no", "locked")

    with pytest.raises(Refused):
        once(users["admin"], "k", fingerprint("a"), refused, lambda r: Kept(200, {}), expected=(Refused,))
    assert not IdempotencyKey.objects.exists() and Run.objects.count() == 1


def test_a_crash_rolls_the_whole_request_back_and_frees_the_key(users):
    def crashes():
        Run.objects.create(kind="maintenance.selftest")
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        once(users["admin"], "k", fingerprint("a"), crashes, lambda r: Kept(200, {}), expected=(Refused,))
    assert not IdempotencyKey.objects.exists() and not Run.objects.exists()


def test_the_generic_runs_api_honours_the_key(client, users, staging):
    _, raw = ApiToken.issue("ops", ["view", "run"], created_by=users["admin"])
    body = {"kind": "maintenance.selftest", "environment": "staging", "params": {"lines": 1, "delay_ms": 0}}

    def post(payload):
        return client.post(
            "/api/v1/runs",
            json.dumps(payload),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
            HTTP_IDEMPOTENCY_KEY="nightly-selftest-2026-12-02",
        )

    first, again = post(body), post(body)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Run.objects.count() == 1
    reused = post({**body, "params": {"lines": 2, "delay_ms": 0}})
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
