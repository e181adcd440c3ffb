"""Bearer-token authentication for /api/ requests."""

from __future__ import annotations

from opsconsole.access.models import ApiToken, TokenExpired


class ApiTokenMiddleware:
    """Sets request.api_token when an Authorization: Bearer header carries a live token.

    A token request is not a session request: CSRF does not apply (no cookie is involved), and
    request.user stays anonymous so only the token's scopes count.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.api_token = None
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if request.path.startswith("/api/") and header.startswith("Bearer "):
            try:
                request.api_token = ApiToken.authenticate(header.removeprefix("Bearer ").strip())
            except TokenExpired as exc:
                request.api_token_refusal = exc  # the API's 401 says when it expired
            request.api_token_attempted = True
            if request.api_token is not None:
                request.api_token_name = f"token:{request.api_token.name}"
                request._dont_enforce_csrf_checks = True
        return self.get_response(request)
