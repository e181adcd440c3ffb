"""The hash chain's canonical form and its verification, without Django.

Kept free of Django imports so a verification worker process (spawned, see `verify_range`) starts
in a fraction of a second: it needs only psycopg and this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring

GENESIS_HASH = "0" * 64
# Every field the hash covers, in the order `verify_chain` reads them: all but the hash itself.
CHAINED_FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor_name",
    "action",
    "target",
    "environment",
    "ip",
    "user_agent",
    "request_id",
    "details",
    "outcome",
    "prev_hash",
)
# The fields only known once the chain is locked (PostgreSQL's audit_append() fills them in), in
# the order they appear in the canonical JSON (sorted keys), with whether they are JSON strings.
LOCKED_FIELDS = (("prev_hash", True), ("seq", False))
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode

# `at` as the ISO text Python's isoformat() gives a UTC datetime, made by the server.
AT_ISO_SQL = """to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
_AS_TEXT = {"at": AT_ISO_SQL, "ip": "host(ip)", "details": "details::text"}
ROWS_SQL = (
    f"SELECT {', '.join(_AS_TEXT.get(name, name) for name in (*CHAINED_FIELDS, 'hash'))} "
    "FROM audit_auditevent WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s"
)
_PREV = CHAINED_FIELDS.index("prev_hash")


def canonical_json(body: dict) -> bytes:
    """The canonical form of an event's chained fields (`at` already an ISO string): sorted keys,
    no spaces, UTF-8. One encoder, made once: verifying a million events calls this a million times."""
    return _encode(body).encode()


def canonical_parts(body: dict) -> list[str]:
    """The canonical JSON of `body` (every chained field but those of LOCKED_FIELDS, `at` as ISO
    text) cut where the locked fields' values go: parts[0] + prev_hash + parts[1] + seq + parts[2]
    is exactly `canonical_json` of the whole event (as text)."""
    locked = dict(LOCKED_FIELDS)
    parts, current = [], "{"
    for index, key in enumerate(sorted(CHAINED_FIELDS)):
        current += ("," if index else "") + _encode(key) + ":"
        if key in locked:
            quote = '"' if locked[key] else ""
            parts.append(current + quote)
            current = quote
        else:
            current += _encode(body[key])
    parts.append(current + "}")
    return parts


# canonical_row() writes the keys in this order: the sorted order canonical_json() gives them.
assert tuple(sorted(CHAINED_FIELDS)) == (
    "action", "actor_id", "actor_name", "at", "details", "environment", "ip", "outcome", "prev_hash",
    "request_id", "seq", "target", "user_agent",
)  # fmt: skip


def canonical_row(row: tuple, loads=json.loads, text=encode_basestring) -> bytes:
    """`canonical_json` of a row as ROWS_SQL reads it (`details` as JSON text), written out
    directly: the same bytes (the same string escaping the encoder uses) in about half the time,
    which is most of what verifying costs. Only actor_id and ip can be NULL."""
    seq, at, actor_id, actor_name, action, target, environment, ip, user_agent, request_id, details, outcome, prev = (
        row[:13]
    )
    return (
        f'{{"action":{text(action)},"actor_id":{"null" if actor_id is None else int(actor_id)},'
        f'"actor_name":{text(actor_name)},"at":{text(at)},"details":{_encode(loads(details))},'
        f'"environment":{text(environment)},"ip":{"null" if ip is None else text(ip)},"outcome":{text(outcome)},'
        f'"prev_hash":{text(prev)},"request_id":{text(request_id)},"seq":{int(seq)},"target":{text(target)},'
        f'"user_agent":{text(user_agent)}}}'
    ).encode()


def verify_rows(rows: Iterable[tuple], expected_seq: int, expected_prev: str | None) -> tuple[int, int | None, str]:
    """Check rows read by ROWS_SQL in seq order, from `expected_seq` on, the first linking to
    `expected_prev`. Returns (events that held, first bad seq or None, problem)."""
    checked = 0
    sha256, canonical = hashlib.sha256, canonical_row
    for row in rows:
        seq = row[0]
        if seq != expected_seq:
            return checked, expected_seq, f"event #{expected_seq} is missing"
        if row[_PREV] != expected_prev:
            return checked, seq, "previous-hash link does not match the event before it"
        if sha256(canonical(row)).hexdigest() != row[-1]:  # the row ends with the hash
            return checked, seq, "contents do not match the stored hash"
        expected_prev, expected_seq, checked = row[-1], expected_seq + 1, checked + 1
    return checked, None, ""


def iter_rows(fetch: Callable[[int, int, int], list[tuple]], after: int, upto: int, batch: int = 10_000):
    """Rows with after < seq <= upto in seq order, a batch at a time (memory stays flat)."""
    while True:
        rows = fetch(after, upto, batch)
        if not rows:
            return
        yield from rows
        after = rows[-1][0]


def verify_range(conninfo: dict, first: int, last: int) -> tuple[int, int | None, str]:
    """A worker process's share: verify events first..last on a connection of its own, linking
    the first to the stored hash of event first-1 (that event is the previous share's to check).
    An event missing at the end of the range is reported too, as `verify_rows` cannot see it."""
    import psycopg

    with psycopg.connect(**conninfo, autocommit=True) as conn:
        prev = GENESIS_HASH
        if first > 1:
            found = conn.execute("SELECT hash FROM audit_auditevent WHERE seq = %s", [first - 1]).fetchone()
            prev = found[0] if found else None

        def fetch(after: int, upto: int, batch: int) -> list[tuple]:
            return conn.execute(ROWS_SQL, [after, upto, batch]).fetchall()

        checked, bad, problem = verify_rows(iter_rows(fetch, first - 1, last), first, prev)
    if bad is None and checked != last - first + 1:
        return checked, first + checked, f"event #{first + checked} is missing"
    return checked, bad, problem
