"""Helpers for the JSON API under /api/v1/: authentication by token or session, JSON errors, and
`environment_for()`, the one way a route turns an environment's name into an environment."""

from __future__ import annotations

import functools
import json
import re

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as default_server_error

from opsconsole.access.permissions import principal_of
from opsconsole.environments.models import Environment
from opsconsole.environments.services import UnknownEnvironment, environment_named

MAX_JSON_DEPTH = 20


class BadRequest(Exception):
    def __init__(self, message: str, code: str = "bad_request"):
        super().__init__(message)
        self.code = code


class TooLarge(BadRequest):
    """The body is over DATA_UPLOAD_MAX_MEMORY_SIZE: 413, read no further."""


class NotFound(BadRequest):
    """There is nothing by that name, and saying so tells the caller nothing it could not list: 404."""

    def __init__(self, message: str, code: str = "not_found"):
        super().__init__(message, code)


class Conflict(BadRequest):
    """The request is well formed but the state forbids it (locked, frozen, busy): 409."""


class Unavailable(BadRequest):
    """Something the request needs is down (the job queue): 503; nothing changed, try again."""


def refusal(exc, conflict_codes: frozenset[str] | set[str] = frozenset()) -> BadRequest:
    """The API's answer to a Refused (opsconsole.runs.services): 503 when the job queue is down, 409
    for a code the caller names a conflict of state, else 400; always with the refusal's code."""
    if exc.code == "queue_unavailable":
        return Unavailable(str(exc), exc.code)
    if exc.code in conflict_codes:
        return Conflict(str(exc), exc.code)
    return BadRequest(str(exc), exc.code)


STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method",
    409: "conflict",
    413: "too_large",
    503: "unavailable",
}


def error(status: int, message: str, code: str = "") -> JsonResponse:
    """Every API error: {"error": message, "code": a stable machine-readable reason}."""
    return JsonResponse({"error": message, "code": code or STATUS_CODES.get(status, "error")}, status=status)


def not_found(request, exception=None):
    """The 404 handler (urls.handler404): JSON under /api/, where a path that matches no route
    (a run id that is not a number, a name with characters no environment has) is still an API
    answer; the ordinary page everywhere else."""
    if request.path_info.startswith("/api/"):
        return error(404, "Not found.")
    return page_not_found(request, exception)


MAX_ID = 2**63 - 1


def query_value(request, name: str) -> str | None:
    """A query parameter of an API list: its one value, or None when it is absent. Given twice
    (`?after=1&after=2`) is a 400: the API does not guess which one was meant. An empty value
    (`?status=`) is a value, checked like any other."""
    values = request.GET.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"{name} is given {len(values)} times; give it once.", "invalid")
    return values[0] if values else None


def query_int(request, name: str, minimum: int, meaning: str) -> int | None:
    """A whole-number query parameter of at least `minimum` (and at most what a bigint holds), or
    None when absent; anything else is a 400 that says what it is (`meaning`)."""
    raw = query_value(request, name)
    if raw is None:
        return None
    if not re.fullmatch(r"[0-9]{1,19}", raw) or not minimum <= int(raw) <= MAX_ID:
        kind = "a positive whole number" if minimum == 1 else f"a whole number, {minimum} or more"
        raise BadRequest(f"{name} must be {kind}: {meaning}.", "invalid")
    return int(raw)


def query_before(request) -> int | None:
    """The keyset cursor `before` of an API list: absent, or a positive id; anything else is a 400
    (a page may ignore a bad cursor, an API client should hear about it)."""
    return query_int(request, "before", 1, "the id the next page starts below")


def query_choice(request, name: str, choices: list[str]) -> str | None:
    """A query parameter that is one of `choices`, or None when absent; anything else is a 400."""
    raw = query_value(request, name)
    if raw is not None and raw not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}.", "invalid")
    return raw


def environment_for(request, name: str, action: str) -> Environment:
    """environments.services.environment_named() for an API request: a name a scoped principal
    cannot see answers exactly as one no environment has (403 `forbidden`); one who sees every
    environment hears 404 `not_found` for an unknown name. Call it before anything else the route
    checks about the environment or the body, so no other answer tells the two apart either."""
    try:
        return environment_named(principal_of(request), name, action)
    except UnknownEnvironment as exc:
        raise NotFound(str(exc)) from None


def server_error(request):
    """The 500 handler (urls.handler500): JSON under /api/, the ordinary page everywhere else."""
    if request.path_info.startswith("/api/"):
        return error(
            500, "The console failed to answer; nothing may have changed. The error is logged.", "server_error"
        )
    return default_server_error(request)


def _unstorable(value, where: str = "body") -> str:
    """The first place in a JSON value holding a character no text column can store (a NUL byte
    or a lone UTF-16 surrogate), or ""."""
    if isinstance(value, str):
        if "\x00" in value or any("\ud800" <= char <= "\udfff" for char in value):
            return where
    elif isinstance(value, dict):
        for key, item in value.items():
            found = _unstorable(key, where) or _unstorable(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unstorable(item, f"{where}[{index}]")
            if found:
                return found
    return ""


def _depth(value, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def json_body(request) -> dict:
    try:
        raw = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
        raise TooLarge(f"The request body is larger than {limit} KiB.", "too_large") from None
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except RecursionError:
        raise BadRequest(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.") from None
    except ValueError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    if _depth(body) > MAX_JSON_DEPTH:
        raise BadRequest(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.")
    where = _unstorable(body)
    if where:
        raise BadRequest(f"{where} holds a NUL byte or a lone UTF-16 surrogate, which cannot be stored.", "invalid")
    return body


def api_endpoint(*methods: str):
    """Allow `methods`, require a token or a signed-in user, and turn errors into JSON."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            principal = principal_of(request)
            if getattr(request, "api_token_attempted", False) and request.api_token is None:
                expired = getattr(request, "api_token_refusal", None)  # access.models.TokenExpired
                if expired is not None:
                    return error(401, str(expired), expired.code)
                return error(401, "The API token is not valid or has been revoked.")
            if not getattr(principal, "is_authenticated", False) and request.api_token is None:
                return error(401, "Authenticate with an API token (Authorization: Bearer ...).")
            if request.method not in methods:
                response = error(405, f"Use {' or '.join(methods)}.")
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except Conflict as exc:
                return error(409, str(exc), exc.code)
            except NotFound as exc:
                return error(404, str(exc), exc.code)
            except TooLarge as exc:
                return error(413, str(exc), exc.code)
            except Unavailable as exc:
                return error(503, str(exc), exc.code)
            except BadRequest as exc:
                return error(400, str(exc), exc.code)
            except PermissionDenied as exc:
                return error(403, str(exc) or "Permission denied.")
            except Http404:
                return error(404, "Not found.")

        return wrapper

    return decorate
