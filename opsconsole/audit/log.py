"""Appending to and verifying the audit chain.

`record()` is the one way to write an AuditEvent. Appends are serialised so concurrent writers
keep one unbroken chain: on PostgreSQL with a transaction-scoped advisory lock, taken inside the
`audit_append()` function (migration audit.0005) that also reads the head, hashes and inserts, so
an append is one round trip; on SQLite by its single-writer transactions (settings open them
IMMEDIATE).

`verify_chain()` walks the chain in-process; `verify_chain(processes=N)` (manage.py verify_audit)
splits a long chain between worker processes.
"""

from __future__ import annotations

import json
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from opsconsole.audit.chain import (
    CHAINED_FIELDS,
    LOCKED_FIELDS,
    ROWS_SQL,
    canonical_parts,
    iter_rows,
    verify_range,
    verify_rows,
)
from opsconsole.audit.models import GENESIS_HASH, AuditEvent, Outcome
from opsconsole.clientip import client_ip
from opsconsole.requestctx import current_request

ADVISORY_LOCK_KEY = 0x6F7073_617564  # "ops" "aud"
SECRET_KEY_PATTERN = re.compile(r"pass(word)?|secret|token|api[_-]?key|credential|private|auth", re.I)
MASK = "********"


def mask_secrets(value: Any) -> Any:
    """Replace the values of secret-looking keys, at any depth, with a fixed mask."""
    if isinstance(value, dict):
        return {key: MASK if SECRET_KEY_PATTERN.search(str(key)) else mask_secrets(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(item) for item in value]
    return value


def record(
    action: str,
    *,
    actor=None,
    actor_name: str = "",
    target: object = "",
    environment: object = "",
    details: dict | None = None,
    outcome: str = Outcome.SUCCESS,
    request=None,
) -> AuditEvent:
    """Append one event to the chain. Actor, ip, user agent and request id default to the
    current request's, when there is one."""
    request = request or current_request()
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
    actor_name = (
        actor_name or getattr(actor, "username", "") or (getattr(request, "api_token_name", "") if request else "")
    )
    event = AuditEvent(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=actor_name or "system",
        action=action,
        target=str(target)[:200],
        environment=str(environment or "")[:100],
        ip=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:300] if request else ""),
        request_id=(getattr(request, "request_id", "") if request else ""),
        details=mask_secrets(details or {}),
        outcome=outcome,
    )
    if outcome != Outcome.SUCCESS and request is not None:
        request.refusal_audited = True  # the refusal middleware (audit.refusals) writes no second event
    # Truncate to microseconds in UTC so the stored value hashes exactly as computed here. Taken
    # before the chain is locked: `at` is when the action happened, `seq` the order in the chain
    # (as before, writers on hosts with different clocks never made `at` follow `seq` strictly).
    event.at = timezone.now().astimezone(UTC)
    if connection.vendor == "postgresql":
        if connection.in_atomic_block:
            # Inside the caller's transaction: a savepoint, so a refused append (a value too long
            # for its column) can be caught without aborting the caller's transaction, as before.
            with transaction.atomic():
                _append_postgresql(event)
        else:
            _append_postgresql(event)  # autocommit: one statement, one round trip, its own transaction
        return event
    with transaction.atomic():
        last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
        event.seq, event.prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        event.hash = event.compute_hash()
        event.save(force_insert=True)
    return event


def _append_postgresql(event: AuditEvent) -> None:
    """One round trip: audit_append() (migration audit.0005) takes the advisory lock, reads the
    chain head, numbers, hashes and inserts, so the lock is held only inside the server.
    Everything else (masking, the canonical JSON of the fields known now) is done before."""
    locked = dict(LOCKED_FIELDS)
    body = {name: getattr(event, name) for name in CHAINED_FIELDS if name not in locked}
    body["at"] = event.at.isoformat(timespec="microseconds")
    parts = canonical_parts(body)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT new_id, new_seq, new_prev_hash, new_hash"
            " FROM audit_append(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)",
            [ADVISORY_LOCK_KEY, parts, event.at, event.actor_id, event.actor_name, event.action, event.target,
             event.environment, event.ip, event.user_agent, event.request_id, json.dumps(event.details),
             event.outcome],
        )  # fmt: skip
        event.id, event.seq, event.prev_hash, event.hash = cursor.fetchone()
    event._state.adding, event._state.db = False, connection.alias


@dataclass
class ChainReport:
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None


# Above this many events, verify_chain(processes=N) splits the chain between worker processes;
# below it, starting them costs more than it saves.
PARALLEL_THRESHOLD = 200_000


def _postgres_conninfo() -> dict:
    """Connection keywords for a worker's own connection to the database this process uses (the
    test database in tests); handed over a pipe, never on a command line."""
    params = connection.get_connection_params()
    return {
        key: value for key, value in params.items() if key not in ("cursor_factory", "context", "prepare_threshold")
    }


def verify_chain(processes: int = 1) -> ChainReport:
    """Recompute every hash in order; report the first sequence number that does not hold.

    With processes > 1 on PostgreSQL and a chain longer than PARALLEL_THRESHOLD, the events up to
    the head at the start are split into that many consecutive ranges, each verified by a spawned
    worker on its own connection against the stored hash of the event before its range; the first
    range (in seq order) that fails names the first bad event, as the in-process walk would. The
    audit page's button runs in a web request and keeps the default, in-process."""
    if connection.vendor == "postgresql":
        head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        if processes > 1 and head > PARALLEL_THRESHOLD:
            return _verify_in_workers(head, processes)

        def fetch(after: int, upto: int, batch: int) -> list[tuple]:
            with connection.cursor() as cursor:
                cursor.execute(ROWS_SQL, [after, upto, batch])
                return cursor.fetchall()

        # No upper bound: events appended while verifying are checked too.
        checked, bad, problem = verify_rows(iter_rows(fetch, 0, 2**62), 1, GENESIS_HASH)
        return ChainReport(checked, bad, problem)
    return _verify_orm()


def _verify_in_workers(head: int, processes: int) -> ChainReport:
    size = -(-head // processes)
    ranges = [(first, min(first + size - 1, head)) for first in range(1, head + 1, size)]
    conninfo = _postgres_conninfo()
    context = multiprocessing.get_context("spawn")  # no fork of a process holding connections
    with ProcessPoolExecutor(max_workers=len(ranges), mp_context=context) as pool:
        results = list(pool.map(verify_range, [conninfo] * len(ranges), *zip(*ranges, strict=True)))
    checked = 0
    for part_checked, bad, problem in results:
        checked += part_checked
        if bad is not None:
            return ChainReport(checked, bad, problem)
    return ChainReport(checked)


def _verify_orm(batch: int = 10_000) -> ChainReport:
    """SQLite: the same walk through the ORM."""

    def rows():
        after = 0
        while True:
            events = list(AuditEvent.objects.filter(seq__gt=after).order_by("seq")[:batch])
            if not events:
                return
            for event in events:
                body = {name: getattr(event, name) for name in CHAINED_FIELDS}
                body["at"] = event.at.isoformat(timespec="microseconds")
                body["details"] = json.dumps(body["details"])  # verify_rows parses it, as from PostgreSQL
                yield (*(body[name] for name in CHAINED_FIELDS), event.hash)
            after = events[-1].seq

    checked, bad, problem = verify_rows(rows(), 1, GENESIS_HASH)
    return ChainReport(checked, bad, problem)
