"""Asking twice starts one thing: the API's Idempotency-Key header and the one-time token of the
forms that start runs, on one mechanism (`once()`).

A key belongs to the principal that sent it (a user, or an API token). The first request with it
runs inside one transaction that holds the key's row (an INSERT against a unique constraint on
principal and key). A repeat with the same key waits for that transaction (at most
WAIT_SECONDS, else KeyBusy: 409 `idempotency_in_progress`) and then gets the first answer again,
the same status, body and run, starting nothing. The same key with a different request (method,
path or body) is KeyReused: 422 `idempotency_key_reused`.

Only a successful answer is kept. After a refusal or an error the key is free again: the refusal
changed nothing, so the same request may succeed once the state allows it. A kept answer has its
secret-looking values masked (opsconsole.audit.log.mask_secrets); keys are kept for KEEP (a day),
an older one counts as new, and a periodic task forgets them (`forget_expired()`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import IntegrityError, OperationalError, connection, transaction
from django.http import Http404, JsonResponse
from django.utils import timezone

from opsconsole.access.permissions import principal_of
from opsconsole.api import BadRequest, error
from opsconsole.audit.log import mask_secrets
from opsconsole.runs.models import IdempotencyKey, Run
from opsconsole.runs.services import Refused

KEEP = timedelta(hours=24)
WAIT_SECONDS = 10
HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,200}")  # visible ASCII, as a header carries it
FORM_FIELD = "request_token"  # the hidden field of a form that starts a run
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout passed


class KeyReused(Exception):
    """The key came with a different request before."""


class KeyBusy(Exception):
    """The first request with this key is still being answered."""


@dataclass(frozen=True)
class Kept:
    """The answer the first request with a key got."""

    status: int
    body: dict
    run_id: int | None = None


def principal_id(principal) -> str:
    if hasattr(principal, "token_hash"):
        return f"token:{principal.pk}"
    return f"user:{principal.pk}"


def fingerprint(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def once(
    principal,
    key: str,
    request_print: str,
    act: Callable[[], Any],
    keep: Callable[[Any], Kept | None],
    *,
    expected: tuple[type[BaseException], ...] = (),
) -> Any:
    """`act()` once for this principal's `key`: returns what it returned, or the Kept answer of the
    first request with the key. `keep(result)` says what to keep (None: keep nothing, free the key).
    An `expected` exception (a refusal) frees the key and keeps whatever else the request wrote (an
    audit event); any other exception rolls the whole request back."""
    holder = principal_id(principal)
    failure = None
    with transaction.atomic():
        held = _hold(holder, key, request_print)
        if isinstance(held, Kept):
            return held
        try:
            result = act()
        except expected as exc:
            failure = exc
            if not transaction.get_rollback():
                held.delete()
        else:
            kept = keep(result)
            if kept is None:
                held.delete()
            else:
                held.status_code, held.body, held.run_id = kept.status, mask_secrets(kept.body), kept.run_id
                held.save(update_fields=["status_code", "body", "run"])
    if failure is not None:
        raise failure
    return result


def _hold(holder: str, key: str, request_print: str) -> IdempotencyKey | Kept:
    """Insert the key's row (ours until the transaction ends), or the answer a first request got."""
    for _ in range(3):
        try:
            with _waiting_at_most(WAIT_SECONDS), transaction.atomic():
                return IdempotencyKey.objects.create(principal=holder, key=key, fingerprint=request_print)
        except IntegrityError:
            pass  # a first request with this key committed (we waited for it if it was running)
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                raise KeyBusy from None
            raise
        found = IdempotencyKey.objects.filter(principal=holder, key=key).first()
        if found is None:
            continue  # forgotten in between: take it
        if found.created_at < timezone.now() - KEEP:
            found.delete()
            continue
        if found.fingerprint != request_print:
            raise KeyReused
        return Kept(found.status_code, found.body, found.run_id)
    raise KeyBusy


@contextmanager
def _waiting_at_most(seconds: int) -> Iterator[None]:
    """Bound how long the INSERT waits for a first request holding the same key (PostgreSQL; SQLite
    has one writer at a time and its own timeout). Set outside the savepoint, so it is restored
    after the INSERT failed too, and the request's own lock waits (an environment's row) keep
    the server's setting."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)", [f"{seconds}s"])
        previous = cursor.fetchone()[0]
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])


def forget_expired() -> int:
    """Delete keys older than KEEP (the periodic task)."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - KEEP).delete()
    return deleted


# --- The API ------------------------------------------------------------------------------------


def _canonical(raw: bytes) -> bytes:
    """The body as the view reads it: a JSON object in key order (spacing and order do not make
    two requests different), else the bytes."""
    try:
        return json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        return raw


def _kept_answer(response) -> Kept | None:
    if not 200 <= response.status_code < 300 or not response.get("Content-Type", "").startswith("application/json"):
        return None
    body = json.loads(response.content)
    return Kept(response.status_code, body) if isinstance(body, dict) else None


def idempotent(view):
    """Honour an Idempotency-Key header on a state-changing API view (see the module docstring).
    Goes inside `api_endpoint`, which authenticates the caller and answers errors as JSON."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None or request.method != "POST":
            return view(request, *args, **kwargs)
        if not KEY_PATTERN.fullmatch(key):
            raise BadRequest(f"{HEADER} must be 1 to 200 visible ASCII characters (a UUID will do).", "invalid")
        try:
            raw = request.body
        except RequestDataTooBig:
            return view(request, *args, **kwargs)  # it answers 413 without reading the body
        request_print = fingerprint(request.method, request.path, _canonical(raw))
        try:
            answer = once(
                principal_of(request),
                key,
                request_print,
                lambda: view(request, *args, **kwargs),
                _kept_answer,
                expected=(BadRequest, PermissionDenied, Http404, Refused),
            )
        except KeyReused:
            return error(
                422,
                f"This {HEADER} was used with a different request; use a new key for a new request.",
                "idempotency_key_reused",
            )
        except KeyBusy:
            message = f"A request with this {HEADER} is still being answered; repeat it shortly."
            response = error(409, message, "idempotency_in_progress")
            response["Retry-After"] = "1"
            return response
        if isinstance(answer, Kept):
            response = JsonResponse(answer.body, status=answer.status)
            response["Idempotent-Replayed"] = "true"
            return response
        return answer

    return wrapper


# --- Forms --------------------------------------------------------------------------------------


class AlreadyRequested(Exception):
    """The form was sent before and started `run_id`; show that run."""

    def __init__(self, run_id: int):
        super().__init__(f"Already requested: this form was sent before and started run #{run_id}.")
        self.run_id = run_id


def form_token() -> str:
    """A fresh one-time token for a form that starts a run (its hidden FORM_FIELD)."""
    return secrets.token_urlsafe(24)


def submit_once(request, start: Callable[[], Run]) -> Run:
    """Call `start()` (a service that starts a run) once per form token: a second POST with the
    token raises AlreadyRequested naming the run the first one started. A form posted without a
    token (an old page) just starts; the service still refuses an identical active run."""
    token = request.POST.get(FORM_FIELD, "")
    if not token:
        return start()
    if not KEY_PATTERN.fullmatch(token):
        raise Refused("The form's token is damaged; reload the page and send it again.", "invalid")
    fields = sorted(
        (name, value)
        for name, values in request.POST.lists()
        if name not in (FORM_FIELD, "csrfmiddlewaretoken")
        for value in values
    )
    request_print = fingerprint(request.method, request.path, json.dumps(fields))
    try:
        result = once(
            request.user,
            f"form:{token}",
            request_print,
            start,
            lambda run: Kept(302, {}, run.pk),
            expected=(Refused, PermissionDenied, Http404),
        )
    except KeyReused:
        raise Refused(
            "This form was already sent with other values; reload the page to make a new request.",
            "idempotency_key_reused",
        ) from None
    except KeyBusy:
        raise Refused(
            "This form is still being handled; wait a moment and look at the runs.", "idempotency_in_progress"
        ) from None
    if isinstance(result, Kept):
        if result.run_id is None:  # the run was deleted since
            raise Refused("This form was already sent; reload the page to make a new request.", "duplicate")
        raise AlreadyRequested(result.run_id)
    return result
