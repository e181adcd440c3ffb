"""Re-authentication ("sudo mode") for dangerous actions.

A view decorated with @sudo_required sends a user who has not confirmed their password in the
last SUDO_MODE_SECONDS to a page that asks for it, then back.

A GET goes back through `next`. A POST cannot be replayed by a redirect, so its fields wait in the
session under a one-time key: the password page then posts the password to the interrupted URL
itself, which checks it and carries on with the fields as they were first sent. Nobody types a
form twice. What waits is what the user typed into a form, never a password: a form with a
secret-looking field (or a file) is not kept, and its user fills it in again after the password.
"""

from __future__ import annotations

import functools
import secrets
import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from opsconsole.access.throttle import sudo_locked_out, sudo_succeeded
from opsconsole.audit.log import SECRET_KEY_PATTERN, record
from opsconsole.clientip import client_ip

SESSION_KEY = "sudo_until"
PENDING_KEY = "sudo_pending"
# The field (and the sudo page's query parameter) naming the form that waits for the password.
RESUME_FIELD = "sudo_resume"
# A form waits this long for its password, and only the newest few wait at once.
PENDING_SECONDS = 15 * 60
MAX_PENDING = 5
NOT_KEPT = frozenset({"csrfmiddlewaretoken"})


def in_sudo_mode(request) -> bool:
    return request.session.get(SESSION_KEY, 0) > time.time()


def grant_sudo(request) -> None:
    request.session[SESSION_KEY] = time.time() + settings.SUDO_MODE_SECONDS


def confirm_password(request, password: str) -> str:
    """Check the user's password again: grants sudo mode and returns "" when it is right, else
    returns what to tell the user. Throttled and audited, whichever door asks."""
    username = request.user.username
    if sudo_locked_out(username, client_ip(request)):
        return "Too many wrong passwords. Wait a few minutes and try again."
    if request.user.check_password(password):
        sudo_succeeded(username)  # the attempt sudo_locked_out() counted was no failure
        grant_sudo(request)
        record("auth.sudo.granted", target=f"user:{username}")
        return ""
    record("auth.sudo.failed", target=f"user:{username}", outcome="failure")
    return "That password is not correct."


def safe_next(request) -> str:
    next_url = request.POST.get("next") or request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        return "/"
    return next_url


def _waiting(request) -> dict[str, dict]:
    now = time.time()
    pending = request.session.get(PENDING_KEY, {})
    return {key: form for key, form in pending.items() if now - form["at"] < PENDING_SECONDS}


def _keep_waiting(request) -> str | None:
    """Keep the interrupted POST's fields until the password is confirmed; returns their key, or
    None when the form is not kept (a secret-looking field, a file)."""
    fields = {name: values for name, values in request.POST.lists() if name not in NOT_KEPT}
    if request.FILES or any(SECRET_KEY_PATTERN.search(name) for name in fields):
        return None
    key = secrets.token_urlsafe(16)
    pending = _waiting(request)
    pending[key] = {"path": request.get_full_path(), "fields": fields, "at": time.time()}
    newest = sorted(pending, key=lambda k: pending[k]["at"])[-MAX_PENDING:]
    request.session[PENDING_KEY] = {k: pending[k] for k in newest}
    return key


def waiting_form(request, key: str | None) -> dict | None:
    """The form waiting under `key` in this session: {"key", "path", "fields"}, or None."""
    form = _waiting(request).get(key or "")
    return {"key": key, **form} if form is not None else None


def _take_waiting(request, key: str) -> dict | None:
    form = waiting_form(request, key)
    if form is not None:
        pending = _waiting(request)
        del pending[key]
        request.session[PENDING_KEY] = pending
    return form


def render_sudo_page(request, next_url: str, error: str = "", resume: dict | None = None):
    """The password page; with `resume`, its form posts to the interrupted URL, which carries on."""
    if resume is None:
        resume = waiting_form(request, request.GET.get("resume"))
    return render(request, "ui/sudo.html", {"next": next_url, "error": error, "resume": resume})


def _resume(view, request, args, kwargs):
    """The password page posted here: check the password, then run the view with the form that
    waited for it, as first sent."""
    key = request.POST.get(RESUME_FIELD, "")
    next_url = safe_next(request)
    if not in_sudo_mode(request):
        error = confirm_password(request, request.POST.get("password", ""))
        if error:
            return render_sudo_page(request, next_url, error, waiting_form(request, key))
    form = _take_waiting(request, key)
    if form is None or form["path"] != request.get_full_path():
        messages.warning(request, "Your password is confirmed, but the form waited too long: send it again.")
        return redirect(next_url)
    replay = QueryDict(mutable=True)
    for name, values in form["fields"].items():
        replay.setlist(name, values)
    replay._mutable = False
    request.POST = replay
    return view(request, *args, **kwargs)


def sudo_required(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if getattr(request, "api_token", None) is not None:
            return view(request, *args, **kwargs)
        if request.method == "POST" and RESUME_FIELD in request.POST:
            return _resume(view, request, args, kwargs)
        if in_sudo_mode(request):
            return view(request, *args, **kwargs)
        if request.method != "POST":
            return redirect(f"{reverse('sudo')}?{urlencode({'next': request.get_full_path()})}")
        # Back to the page the form came from, should the form not be kept or the user give up.
        query = {"next": request.META.get("HTTP_REFERER", "/")}
        key = _keep_waiting(request)
        if key is not None:
            query["resume"] = key
        return redirect(f"{reverse('sudo')}?{urlencode(query)}")

    return wrapper
