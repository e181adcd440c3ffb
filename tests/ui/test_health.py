"""/healthz says the process is up; /readyz checks the database and the broker."""

from unittest import mock

import pytest

from opsconsole.runs.dispatch import QueueUnavailable


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


@pytest.mark.django_db
def test_readyz_names_the_broker_when_it_is_down(client):
    failure = QueueUnavailable("down")
    failure.__cause__ = ConnectionRefusedError()
    with mock.patch("opsconsole.ui.views.check_queue", side_effect=failure):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == {"broker": "ConnectionRefusedError"}
    assert response.json()["message"] == "not ready: broker"


@pytest.mark.django_db
def test_readyz_names_the_database_when_it_is_down(client):
    with mock.patch("opsconsole.ui.views.connection.cursor", side_effect=OSError("db gone")):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert "database" in response.json()["failing"]
