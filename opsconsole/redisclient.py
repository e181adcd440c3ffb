"""The web process's own Redis client (sign-in throttling, refusal counts, the queue depth on
/metrics), apart from the queue backends' connections.

Short timeouts and no retries: each user falls back (to the audit log, to writing every refusal, to
"unknown") rather than hold a web worker on a Redis that does not answer, and a retried script
could count one attempt twice.
"""

from __future__ import annotations

import functools

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

TIMEOUT_SECONDS = 0.5


@functools.cache
def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0)
    )
