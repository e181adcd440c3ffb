"""Settings of the notifications app, read from the environment (see docs/monitoring.md).
A Django setting of the same name wins, which is how tests shorten the waits."""

from __future__ import annotations

from django.conf import settings

from opsconsole.env import env_int, env_str


def _setting(name: str, read):
    value = getattr(settings, name, None)
    return read() if value is None else value


def timeout_seconds() -> float:
    """Connect and read timeout of one HTTP attempt."""
    return _setting("NOTIFY_TIMEOUT_SECONDS", lambda: env_int("NOTIFY_TIMEOUT_SECONDS", 5, minimum=1))


def max_attempts() -> int:
    return _setting("NOTIFY_MAX_ATTEMPTS", lambda: env_int("NOTIFY_MAX_ATTEMPTS", 5, minimum=1))


def backoff_seconds() -> float:
    """The first retry waits this long, each next one twice as long (capped by max_wait_seconds)."""
    return _setting("NOTIFY_BACKOFF_SECONDS", lambda: env_int("NOTIFY_BACKOFF_SECONDS", 10, minimum=1))


def max_wait_seconds() -> float:
    """The longest wait before a retry; a Retry-After longer than this ends the delivery failed."""
    return _setting("NOTIFY_MAX_WAIT_SECONDS", lambda: env_int("NOTIFY_MAX_WAIT_SECONDS", 600, minimum=1))


def pagerduty_url() -> str:
    return _setting(
        "PAGERDUTY_EVENTS_URL",
        lambda: env_str("PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com/v2/enqueue"),
    )


def sweep_seconds() -> int:
    return env_int("NOTIFY_SWEEP_INTERVAL_SECONDS", 300, minimum=10)


def base_url() -> str:
    return (getattr(settings, "OPSCONSOLE_BASE_URL", "") or "").rstrip("/")
