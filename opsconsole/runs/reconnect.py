"""Riding out a database restart inside a worker.

Django checks a persistent connection's health only at request boundaries (CONN_HEALTH_CHECKS),
and a job is one long "request": once PostgreSQL restarts, every later query of that thread would
fail on the dead connection. These helpers drop a broken connection (outside a transaction only)
so the next query opens a new one, and wait, with backoff, for the server to come back.
"""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError, InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)


def is_connection_error(error: BaseException) -> bool:
    """A database error about the connection (server gone, restarted) rather than the statement."""
    return isinstance(error, OperationalError | InterfaceError)


def recover_connection() -> None:
    """Close this thread's connection if the last query failed and it is no longer usable."""
    if connection.errors_occurred and not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


def wait_for_database(timeout: float) -> bool:
    """Block until a query works again (True) or `timeout` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        try:
            recover_connection()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except DatabaseError as exc:
            if time.monotonic() + delay > deadline:
                logger.error("the database did not come back within %ss: %s", timeout, exc)
                return False
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
