"""/healthz says the process is up; /readyz checks the database and the broker (with either really
down: tests/faults/test_readyz.py)."""

import pytest


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"


@pytest.mark.django_db
def test_readyz_is_ok_when_database_and_broker_answer(client, settings):
    settings.OPSCONSOLE_QUEUE = "celery"  # checks the real Redis from REDIS_URL
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "queue": "celery"}
