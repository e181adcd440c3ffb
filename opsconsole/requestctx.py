"""The request being served, for code far from the view (the audit log reads ip and request id)."""

from __future__ import annotations

from contextvars import ContextVar

_current_request: ContextVar = ContextVar("current_request", default=None)


def current_request():
    return _current_request.get()


def set_current_request(request):
    return _current_request.set(request)


def reset_current_request(token) -> None:
    _current_request.reset(token)
