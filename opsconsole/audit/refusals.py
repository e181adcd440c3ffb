"""Every refused state-changing request is an audit event, and a flood of them is not a flood of events.

`RefusalAuditMiddleware` looks at each POST, PUT, PATCH and DELETE once it has its answer: a 401,
403, 409 or 429, a 400 whose JSON names a refusal code, or a page that said no with an error
message (`ErrorNotingStorage`, the message storage, notes them) is a refusal. Unless the view
already audited it (a DR refusal, a failed sign-in: `record()` notes that on the request), it
becomes `request.refused` with outcome `denied`: who, which route, the code and the message the
caller saw.

Coalescing: the first refusal of a principal, route and code in a minute is written at once; the
rest of that minute are counted in Redis, and one `request.refused.coalesced` event with the count
follows when the minute is over (written by the next refusal anywhere, or by the periodic sweep,
whichever comes first). Without Redis, or while it does not answer, every refusal is written.
"""

from __future__ import annotations

import json
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.shortcuts import resolve_url

from opsconsole import redisclient
from opsconsole.audit.log import record
from opsconsole.audit.models import Outcome
from opsconsole.clientip import client_ip
from opsconsole.requestctx import reset_current_request, set_current_request

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REFUSAL_STATUSES = {401: "unauthenticated", 403: "forbidden", 409: "conflict", 429: "throttled"}
# A 400 is a refusal when its code says the state or the rules forbid it, not that the input was
# malformed (a typo is not an attempt; the caller is told what to fix).
NOT_REFUSALS = frozenset({"bad_request", "invalid", "too_large", "method", "not_found"})
WINDOW_SECONDS = 60
KEY_PREFIX = "opsconsole:audit:refusals:"


def note_audited(request) -> None:
    """The view wrote its own denied or failed event for this request: do not write another."""
    if request is not None:
        request.refusal_audited = True


class RefusalAuditMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method in UNSAFE_METHODS and not getattr(request, "refusal_audited", False):
            refusal = refusal_of(request, response)
            if refusal is not None:
                refused(request, *refusal)
        return response


def refusal_of(request, response) -> tuple[str, str] | None:
    """(code, message) when this answer refused the request, else None."""
    status = response.status_code
    body = _json_body(response)
    code, message = str(body.get("code", "")), str(body.get("error", ""))
    if status in REFUSAL_STATUSES:
        return code or REFUSAL_STATUSES[status], message or response.reason_phrase
    if status == 400 and code and code not in NOT_REFUSALS:
        return code, message
    if status in (302, 303):
        user, location = getattr(request, "user", None), response.get("Location", "")
        signed_in = user is not None and user.is_authenticated
        if not signed_in and location.startswith(resolve_url(settings.LOGIN_URL)) and "next=" in location:
            return "unauthenticated", "Sign in first."  # login_required's answer; a sign-out's redirect is not one
    errors = getattr(request, "error_messages", [])
    if errors:  # a page that said no with an error message, redirecting or showing the form again
        return "refused", errors[-1]
    return None


class ErrorNotingStorage(FallbackStorage):
    """Django's message storage that also notes, on the request, the errors this request added:
    how a page says no (a lock, a freeze, your own request, a mistyped confirmation)."""

    def add(self, level, message, extra_tags=""):
        if level >= messages.ERROR:
            self.request.error_messages = [*getattr(self.request, "error_messages", []), str(message)]
        return super().add(level, message, extra_tags)


def _json_body(response) -> dict:
    if not response.get("Content-Type", "").startswith("application/json") or getattr(response, "streaming", False):
        return {}
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def coalescing_key(request) -> str:
    """Whose refusals are counted together: a user, a token (by id: names repeat), or, for the
    anonymous, one client address (so each address that is refused is named at least once)."""
    token = getattr(request, "api_token", None)
    if token is not None:
        return f"token:{token.pk}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"anonymous@{client_ip(request) or '?'}"


def _principal_name(request) -> str:
    """The name a coalesced event gives its principal."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user.username
    return getattr(request, "api_token_name", "") or f"anonymous from {client_ip(request) or 'an unknown address'}"


def refused(request, code: str, message: str) -> None:
    """Audit one refusal, or count it when its principal, route and code were audited this minute."""
    match = getattr(request, "resolver_match", None)
    route = match.route if match is not None and match.route else request.path_info[:200]
    window = int(time.time()) // WINDOW_SECONDS
    flush_finished(before=window)
    if counter().add(window, [coalescing_key(request), _principal_name(request), route, code]) > 1:
        return
    record(
        "request.refused",
        target=route,
        details={"code": code, "error": message[:500], "method": request.method, "path": request.path_info[:300]},
        outcome=Outcome.DENIED,
        request=request,
    )


def flush_finished(before: int | None = None) -> int:
    """Write one `request.refused.coalesced` event per principal, route and code that was refused
    more than once in a minute that is over; returns how many it wrote. Also the periodic sweep."""
    before = int(time.time()) // WINDOW_SECONDS if before is None else before
    written = 0
    for window, (_, principal, route, code), count in counter().take_finished(before):
        if count > 1:
            token = set_current_request(None)  # not the request that happens to be flushing
            try:
                record(
                    "request.refused.coalesced",
                    actor_name=principal,
                    target=route,
                    details={"code": code, "count": count - 1, "minute": window * WINDOW_SECONDS},
                    outcome=Outcome.DENIED,
                )
            finally:
                reset_current_request(token)
            written += 1
    return written


class RedisCounter:
    """One hash per minute: field = [principal, route, code] as JSON, value = refusals."""

    def __init__(self, url: str):
        self.client = redisclient.client(url)

    def add(self, window: int, key: list[str]) -> int:
        name = f"{KEY_PREFIX}{window}"
        pipe = self.client.pipeline()
        pipe.hincrby(name, json.dumps(key), 1)
        pipe.expire(name, 86400)
        pipe.sadd(f"{KEY_PREFIX}windows", window)
        return int(pipe.execute()[0])

    def take_finished(self, before: int):
        for raw in self.client.smembers(f"{KEY_PREFIX}windows"):
            window = int(raw)
            if window >= before or not self.client.srem(f"{KEY_PREFIX}windows", raw):
                continue  # still open, or another process took it
            name = f"{KEY_PREFIX}{window}"
            pipe = self.client.pipeline()
            pipe.hgetall(name)
            pipe.delete(name)
            fields = pipe.execute()[0]
            for key, count in fields.items():
                yield window, json.loads(key), int(count)


class EveryRefusal:
    """Without Redis (the sandbox) nothing is shared between processes to count in: every refusal
    is written."""

    def add(self, window: int, key: list[str]) -> int:
        return 1

    def take_finished(self, before: int):
        return iter(())


class FailOpenCounter:
    """When Redis does not answer, every refusal is audited: a lost count is worse than a long log."""

    def __init__(self, inner):
        self.inner = inner

    def add(self, window: int, key: list[str]) -> int:
        try:
            return self.inner.add(window, key)
        except Exception:  # redis.RedisError, OSError: the audit must not depend on the cache
            return 1

    def take_finished(self, before: int):
        try:
            yield from self.inner.take_finished(before)
        except Exception:
            return


_counter = None


def counter():
    global _counter
    if _counter is None:
        _counter = FailOpenCounter(RedisCounter(settings.REDIS_URL)) if settings.REDIS_URL else EveryRefusal()
    return _counter
