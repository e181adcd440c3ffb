"""Sign-in throttling counts in Redis, which the per-test database rollback does not reach: each
test starts, and leaves, with no attempts counted."""

import os

import pytest
import redis

from opsconsole.access.throttle import KEY_PREFIX


def forget_sign_in_attempts() -> None:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])  # a test may point settings elsewhere
    try:
        keys = list(client.scan_iter(match=f"{KEY_PREFIX}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(autouse=True)
def no_sign_in_attempts_counted():
    forget_sign_in_attempts()
    yield
    forget_sign_in_attempts()
