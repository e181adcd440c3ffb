"""Re-authentication ("sudo mode") for dangerous actions.

A view decorated with @sudo_required sends a user who has not confirmed their password in the
last SUDO_MODE_SECONDS to a page that asks for it, then back.
"""

from __future__ import annotations

import functools
import time
from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse

SESSION_KEY = "sudo_until"


def in_sudo_mode(request) -> bool:
    return request.session.get(SESSION_KEY, 0) > time.time()


def grant_sudo(request) -> None:
    request.session[SESSION_KEY] = time.time() + settings.SUDO_MODE_SECONDS


def sudo_required(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if getattr(request, "api_token", None) is not None or in_sudo_mode(request):
            return view(request, *args, **kwargs)
        # A POST cannot be replayed through a redirect; send the user back to the page it came from.
        next_url = request.get_full_path() if request.method == "GET" else request.META.get("HTTP_REFERER", "/")
        return redirect(f"{reverse('sudo')}?{urlencode({'next': next_url})}")

    return wrapper
