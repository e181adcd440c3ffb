"""/readyz on the console as deployed (gunicorn) with its database, then its broker, really down:
503 naming what failed while it is down, 200 as soon as it is back, the console not restarted."""

from __future__ import annotations

import json
import urllib.request

import pytest

pytestmark = pytest.mark.integration


def readyz(private) -> tuple[int, dict]:
    status, body = private.get(urllib.request.build_opener(), "/readyz")
    return status, json.loads(body)


def test_readyz_is_503_naming_the_database_while_it_is_down_and_200_once_it_is_back(private):
    private.console()
    assert readyz(private) == (200, {"status": "ok", "queue": "celery"})  # gunicorn holds a connection now

    with private.postgres_down():
        status, answer = readyz(private)
        assert status == 503, answer
        assert answer == {
            "status": "unavailable",
            "failing": {"database": "OperationalError"},
            "message": "not ready: database",
        }

    assert readyz(private) == (200, {"status": "ok", "queue": "celery"})


def test_readyz_is_503_naming_the_broker_while_it_is_down_and_200_once_it_is_back(private):
    private.console()
    assert readyz(private) == (200, {"status": "ok", "queue": "celery"})

    private.services.redis.stop()
    try:
        status, answer = readyz(private)
        assert status == 503, answer
        assert answer["failing"] == {"broker": "OperationalError"}
        assert answer["message"] == "not ready: broker"
    finally:
        private.services.redis.start()

    assert readyz(private) == (200, {"status": "ok", "queue": "celery"})
