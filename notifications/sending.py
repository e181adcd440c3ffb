"""One attempt at sending: an HTTP POST with a short timeout (Slack, PagerDuty) or a message
through Django's mail backend. The result says whether to retry and after how long the receiver
asked us to wait; an error text never holds the secret."""

from __future__ import annotations

import email.utils
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass
class Result:
    ok: bool
    http_status: int | None = None
    error: str = ""
    retryable: bool = False
    retry_after: float | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a webhook that redirects is misconfigured; never re-send the body elsewhere


_opener = urllib.request.build_opener(_NoRedirect)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After is seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def post_json(url: str, body: dict, timeout: float, secrets: tuple[str, ...] = ()) -> Result:
    def scrub(text: str) -> str:
        for secret in secrets:
            if secret:
                text = text.replace(secret, "********")
        return text[:500]

    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "opsconsole-notifications"},
        method="POST",
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(64 * 1024)
            return Result(ok=True, http_status=response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
        detail = scrub(exc.read(300).decode("utf-8", "replace").strip()) if exc.fp else ""
        retryable = status == 429 or status >= 500
        return Result(
            ok=False,
            http_status=status,
            error=f"HTTP {status}" + (f": {detail}" if detail else ""),
            retryable=retryable,
            retry_after=parse_retry_after(exc.headers.get("Retry-After")) if retryable else None,
        )
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
            return Result(ok=False, error=f"No answer within {timeout:g}s (timed out).", retryable=True)
        return Result(ok=False, error=scrub(f"Could not connect: {reason}"), retryable=True)
    except ValueError as exc:  # not a URL at all
        return Result(ok=False, error=scrub(f"Not a usable URL ({exc})."), retryable=False)


def send_email(subject: str, body: str, recipients: list[str]) -> Result:
    from django.conf import settings
    from django.core.mail import BadHeaderError, send_mail

    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
    except (BadHeaderError, ValueError, TypeError) as exc:  # the message itself is wrong: a retry fails the same
        return Result(ok=False, error=f"{type(exc).__name__}: {str(exc)[:300]}", retryable=False)
    except Exception as exc:  # SMTP errors, refused connections, timeouts: all worth a retry
        return Result(ok=False, error=f"{type(exc).__name__}: {str(exc)[:300]}", retryable=True)
    return Result(ok=True)


def utc_timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
