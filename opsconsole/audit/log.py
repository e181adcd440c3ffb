"""Appending to and verifying the audit chain.

`record()` is the one way to write an AuditEvent. Appends are serialised so concurrent writers
keep one unbroken chain: on PostgreSQL with a transaction-scoped advisory lock, on SQLite by its
single-writer transactions (settings open them IMMEDIATE).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.db import connection, transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from opsconsole.audit.models import CHAINED_FIELDS, GENESIS_HASH, AuditEvent, Outcome, canonical_json
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
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
        last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
        event.seq, event.prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        # Truncate to microseconds in UTC so the stored value hashes exactly as computed here.
        event.at = timezone.now().astimezone(UTC)
        event.hash = event.compute_hash()
        event.save(force_insert=True)
    return event


def client_ip(request) -> str | None:
    """REMOTE_ADDR in the form the database returns it (IPv6 compressed, lower case), so the
    hash computed before saving still matches the stored row; None when it is not an address."""
    value = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    try:
        validate_ipv46_address(value)
    except ValidationError:
        return None
    return clean_ipv6_address(value) if ":" in value else value


@dataclass
class ChainReport:
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None


def _iter_chain(batch: int = 10_000) -> Iterator[tuple]:
    """Every event as (body of CHAINED_FIELDS with `at` as ISO text, stored hash), in seq order,
    a batch at a time (memory stays flat however long the chain is).

    On PostgreSQL it reads plain rows with one query per batch (no model instances: verifying a
    million events is then a few seconds, not a minute); elsewhere through the ORM."""
    after = 0
    if connection.vendor == "postgresql":
        # `at` as the ISO text Python's isoformat() gives a UTC datetime, made by the server (on
        # another core) rather than parsed into a datetime here and formatted back.
        at_iso = """to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
        as_text = {"at": at_iso, "ip": "host(ip)", "details": "details::text"}
        columns = ", ".join(as_text.get(name, name) for name in (*CHAINED_FIELDS, "hash"))
        sql = f"SELECT {columns} FROM {AuditEvent._meta.db_table} WHERE seq > %s ORDER BY seq LIMIT %s"
        details = CHAINED_FIELDS.index("details")
        while True:
            with connection.cursor() as cursor:
                cursor.execute(sql, [after, batch])
                rows = cursor.fetchall()
            if not rows:
                return
            for row in rows:
                body = dict(zip(CHAINED_FIELDS, row, strict=False))  # the row ends with the hash
                body["details"] = json.loads(row[details])
                yield body, row[-1]
            after = rows[-1][0]
    while True:
        rows = list(AuditEvent.objects.filter(seq__gt=after).order_by("seq")[:batch])
        if not rows:
            return
        for event in rows:
            body = {name: getattr(event, name) for name in CHAINED_FIELDS}
            body["at"] = event.at.isoformat(timespec="microseconds")
            yield body, event.hash
        after = rows[-1].seq


def verify_chain() -> ChainReport:
    """Recompute every hash in order; report the first sequence number that does not hold."""
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    for body, stored_hash in _iter_chain():
        seq = body["seq"]
        if seq != expected_seq:
            return ChainReport(checked, expected_seq, f"event #{expected_seq} is missing")
        if body["prev_hash"] != expected_prev:
            return ChainReport(checked, seq, "previous-hash link does not match the event before it")
        if hashlib.sha256(canonical_json(body)).hexdigest() != stored_hash:
            return ChainReport(checked, seq, "contents do not match the stored hash")
        expected_prev, expected_seq, checked = stored_hash, expected_seq + 1, checked + 1
    return ChainReport(checked)
