"""The one permission helper every view and API endpoint uses.

A principal is either a user (roles held as RoleBinding rows) or an API token (scopes plus
either every environment, ones added later included, or a list of them; an empty list reaches
nothing). A token acts for its owner: it may do what both its scopes and its owner's roles allow
now, so an owner who loses a role (or is deactivated) takes it from their tokens at once. A token
without an owner (made in the admin or a shell) has its scopes alone.
`allowed(principal, action, environment)` answers; `require`
raises PermissionDenied with a message the user understands.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from opsconsole.access.models import ROLE_ACTIONS, Action, ApiToken


def principal_of(request):
    token = getattr(request, "api_token", None)
    return token if token is not None else request.user


def _user_grants(user) -> dict[int | None, set[str]]:
    """environment id (None = every environment) -> actions, computed once per user object."""
    cached = getattr(user, "_opsconsole_grants", None)
    if cached is None:
        cached = {}
        for role, env_id in user.role_bindings.values_list("role", "environment_id"):
            cached.setdefault(env_id, set()).update(ROLE_ACTIONS.get(role, ()))
        user._opsconsole_grants = cached
    return cached


def _token_environment_ids(token: ApiToken) -> set[int] | None:
    """The environments the token names; None when it has all_environments (ones added later too)."""
    if token.all_environments:
        return None
    cached = getattr(token, "_opsconsole_env_ids", None)
    if cached is None:
        cached = set(token.environments.values_list("id", flat=True))
        token._opsconsole_env_ids = cached
    return cached


def _user_may_in(user, action: str, environment_id: int) -> bool:
    if not user.is_active:
        return False
    grants = _user_grants(user)
    return user.is_superuser or action in grants.get(None, ()) or action in grants.get(environment_id, ())


def allowed(principal, action: str, environment=None) -> bool:
    """May this principal perform `action` in `environment`?

    With no environment: may it perform `action` in at least one environment; except ADMIN,
    which then means administering the console and needs a grant that covers every environment.
    """
    if principal is None:
        return False
    if isinstance(principal, ApiToken):
        if not principal.is_active or action not in principal.scopes:
            return False
        env_ids = _token_environment_ids(principal)
        if env_ids is None:
            by_scope = True
        elif environment is None:
            by_scope = bool(env_ids) and action != Action.ADMIN
        else:
            by_scope = environment.pk in env_ids
        owner = principal.created_by
        if not by_scope or owner is None:
            return by_scope
        if environment is None and env_ids is not None:
            # "Somewhere": somewhere both the token and its owner reach.
            return any(_user_may_in(owner, action, env_id) for env_id in env_ids)
        return allowed(owner, action, environment)
    if not principal.is_authenticated or not principal.is_active:
        return False
    if principal.is_superuser:
        return True
    grants = _user_grants(principal)
    if action in grants.get(None, ()):
        return True
    if environment is None:
        # Administering the console itself (API tokens, the audit chain) reaches every
        # environment, so it takes a global binding: an admin of staging alone could otherwise
        # mint a token that acts in production.
        if action == Action.ADMIN:
            return False
        return any(action in actions for actions in grants.values())
    return action in grants.get(environment.pk, ())


def require(request, action: str, environment=None) -> None:
    if not allowed(principal_of(request), action, environment):
        where = f" in {environment}" if environment is not None else ""
        raise PermissionDenied(f"You do not have permission to {action}{where}.")


def visible_environment_ids(principal) -> set[int] | None:
    """Environment ids the principal may view; None means every environment."""
    if isinstance(principal, ApiToken):
        if "view" not in principal.scopes or not principal.is_active:
            return set()
        scoped = _token_environment_ids(principal)
        if principal.created_by is None:
            return scoped
        owners = visible_environment_ids(principal.created_by)
        if scoped is None or owners is None:
            return owners if scoped is None else scoped
        return scoped & owners
    if principal.is_superuser:
        return None
    grants = _user_grants(principal)
    if None in grants:
        return None
    return {env_id for env_id, actions in grants.items() if "view" in actions}
