"""Sign-in throttling: how many recent wrong passwords a username, or a client address, may have
before further attempts are refused, at the sign-in form and at the re-authentication prompt.

Counted in Redis: one sorted set of attempt times per username and one per client address
(`opsconsole.clientip`: behind the load balancer, the real client's). Taking an attempt - drop
what is older than LOGIN_LOCKOUT_SECONDS, compare with the limit, add - is one Lua script, run
before the password is checked, so concurrent guesses cannot all pass the check before any of
them is counted. A right password gives its attempt back, so the sets hold wrong passwords (and
attempts still being checked). Usernames and addresses are separate keys: guesses at invented
usernames never count against a real one, and from one address they lock out that address only.

Without Redis (the sandbox), or while it does not answer, wrong passwords are counted from the
audit log's events as before: no lockout is skipped and sign-in keeps working, but concurrent
guesses are not serialised until Redis is back.

A refused attempt is audited (`auth.login.throttled`, `auth.sudo.throttled`, outcome denied):
the first for a username and address in a minute at once, the rest of that minute counted and
carried by the next event, so a flood of guesses is not a flood of events.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import timedelta

import redis
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from redis.commands.core import Script

from opsconsole import redisclient
from opsconsole.audit.log import record
from opsconsole.audit.models import AuditEvent, Outcome

logger = logging.getLogger(__name__)

KEY_PREFIX = "opsconsole:throttle:"
# An address may fail across several usernames (a shared office address), but not without bound.
ADDRESS_FACTOR = 4
AUDIT_EVERY_SECONDS = 60

# KEYS: the counters the attempt counts against. ARGV: now, window (seconds), a unique member,
# then each counter's limit. Returns 0 when the attempt was taken (counted in every counter),
# else the position of the first counter at its limit (nothing counted).
TAKE_SCRIPT = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (now - window))
  if redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('EXPIRE', key, math.ceil(window))
end
return 0
"""

# KEYS[1]: set while a throttled event for this username and address is under a minute old;
# KEYS[2]: attempts refused since that event. ARGV: the minute, how long to keep the tally.
# Returns how many were refused, this one included, when an event is due now; else 0.
NOTE_SCRIPT = """
local refused = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('DEL', KEYS[2])
  return refused
end
return 0
"""

# KEYS: the counters a right password gives its attempt back to (the newest in each: the same
# count as its own, and nothing needs carrying from the check to here).
GIVE_BACK_SCRIPT = """
for _, key in ipairs(KEYS) do
  redis.call('ZPOPMAX', key)
end
return 0
"""

SCRIPTS = {"take": TAKE_SCRIPT, "note": NOTE_SCRIPT, "give_back": GIVE_BACK_SCRIPT}


class RedisUnavailable(Exception):
    """No Redis configured, or it did not answer: count from the audit log instead."""


@dataclass(frozen=True)
class Limit:
    """One counter an attempt counts against: its name in audit events, its Redis key, how many
    wrong passwords it allows, and the audit events that count them when Redis cannot."""

    name: str
    key: str
    allowed: int
    failures: QuerySet


def login_locked_out(username: str, ip: str | None) -> bool:
    """Is this sign-in attempt refused? Asked once per attempt, before the password is checked:
    an attempt that is not refused is counted in the same atomic step, and `login_succeeded()`
    takes it back when the password was right. A refused attempt is audited."""
    username = normalised_username(username)
    failed = AuditEvent.objects.filter(action="auth.login.failed")
    allowed = settings.LOGIN_FAILURES_ALLOWED
    limits = [
        Limit("username", _key("login:user", username), allowed, failed.filter(details__username__iexact=username))
    ]
    if ip is not None:
        limits.append(Limit("address", _key("login:ip", ip), allowed * ADDRESS_FACTOR, failed.filter(ip=ip)))
    refused_by = _take_attempt(limits)
    if refused_by is not None:
        _audit_refusal("auth.login.throttled", username, ip, {"username": username, "limit": refused_by.name})
    return refused_by is not None


def login_succeeded(username: str, ip: str | None) -> None:
    """The password was right: give back the attempt `login_locked_out()` counted."""
    keys = [_key("login:user", normalised_username(username))]
    if ip is not None:
        keys.append(_key("login:ip", ip))
    _give_back(keys)


def sudo_locked_out(username: str, ip: str | None) -> bool:
    """Is this attempt at the re-authentication prompt refused (a stolen session guessing the
    password)? Counted per username as `login_locked_out()` counts; `sudo_succeeded()` gives a
    right password's attempt back. A refused attempt is audited."""
    failed = AuditEvent.objects.filter(action="auth.sudo.failed", target=f"user:{username}")
    limits = [Limit("username", _key("sudo:user", username), settings.LOGIN_FAILURES_ALLOWED, failed)]
    refused_by = _take_attempt(limits)
    if refused_by is not None:
        _audit_refusal("auth.sudo.throttled", username, ip, {})
    return refused_by is not None


def sudo_succeeded(username: str) -> None:
    _give_back([_key("sudo:user", username)])


def normalised_username(username: str) -> str:
    """The username as the sign-in form cleans it (NFKC, stripped), cut to the column's length."""
    return unicodedata.normalize("NFKC", username or "").strip()[:150]


def _key(kind: str, value: str) -> str:
    # Case-folded, so that spellings of one name share a counter ("Dana", "ｄａｎａ ": the audit
    # events keep the name as typed); hashed, so keys are short and hold no usernames.
    folded = normalised_username(value).casefold()
    return f"{KEY_PREFIX}{kind}:{hashlib.sha256(folded.encode()).hexdigest()[:32]}"


def _take_attempt(limits: list[Limit]) -> Limit | None:
    """Count one attempt against every limit and return None, or return the first limit that
    refuses it (and count nothing)."""
    window = settings.LOGIN_LOCKOUT_SECONDS
    now = timezone.now()
    keys = [limit.key for limit in limits]
    try:
        position = _run("take", keys, [repr(now.timestamp()), window, uuid.uuid4().hex, *(x.allowed for x in limits)])
    except RedisUnavailable:
        since = now - timedelta(seconds=window)
        return next((limit for limit in limits if limit.failures.filter(at__gte=since).count() >= limit.allowed), None)
    return limits[int(position) - 1] if position else None


def _give_back(keys: list[str]) -> None:
    try:
        _run("give_back", keys, [])
    except RedisUnavailable:
        pass  # counted from the audit log, where a right password was never a failure


def _audit_refusal(action: str, username: str, ip: str | None, details: dict) -> None:
    """Audit the first refusal for this username and address in a minute, with how many were
    refused since the previous event; only count the others."""
    subject = _key(action, f"{username}\n{ip or '-'}")
    try:
        refused = int(_run("note", [f"{subject}:audited", f"{subject}:refused"], [AUDIT_EVERY_SECONDS, 86400]))
    except RedisUnavailable:
        since = timezone.now() - timedelta(seconds=AUDIT_EVERY_SECONDS)
        recent = AuditEvent.objects.filter(action=action, target=f"user:{username}", ip=ip, at__gte=since)
        refused = 0 if recent.exists() else 1
    if refused:
        record(action, target=f"user:{username}", details={**details, "refused": refused}, outcome=Outcome.DENIED)


def _run(script: str, keys: list[str], args: list) -> int:
    """Run one of SCRIPTS in Redis; RedisUnavailable when there is none or it does not answer."""
    if not settings.REDIS_URL:
        raise RedisUnavailable
    try:
        return _scripts(settings.REDIS_URL)[script](keys=keys, args=args)
    except redis.RedisError as exc:
        logger.warning("sign-in throttling: Redis did not answer (%s); counting from the audit log", exc)
        raise RedisUnavailable from exc


@functools.cache
def _scripts(url: str) -> dict[str, Script]:
    client = redisclient.client(url)  # no retries: a retried script could count one attempt twice
    return {name: client.register_script(source) for name, source in SCRIPTS.items()}
