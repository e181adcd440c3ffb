"""JSON API for CI: register and list releases, request deploys and rollbacks, list environments
(described in deployments/openapi.py). A deploy or rollback request honours an Idempotency-Key
header (opsconsole/runs/idempotency.py); one identical to a run still active is a 409 `duplicate`
naming that run. An environment the caller may not see answers exactly as a name no environment
has (opsconsole.api.environment_for)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from deployments import services
from deployments.models import Release
from opsconsole.access.models import Action
from opsconsole.access.permissions import allowed, principal_of, require, visible_environment_ids
from opsconsole.api import MAX_ID, BadRequest, api_endpoint, environment_for, json_body, query_before, refusal
from opsconsole.environments.models import Environment
from opsconsole.runs.api import enforce_csrf_for_session, refusal_answer, run_json
from opsconsole.runs.idempotency import idempotent
from opsconsole.runs.services import NotPermitted, Refused
from opsconsole.ui.pagination import keyset_page

REPOSITORY_LENGTH = Release._meta.get_field("repository").max_length

CONFLICT_CODES = {
    "locked",
    "busy",
    "duplicate",
    "frozen",
    "already_live",
    "not_a_good_release",
    "not_configured",
    "failed_over",
}


def release_json(release: Release) -> dict:
    return {
        "id": release.pk,
        "repository": release.repository,
        "tag": release.tag,
        "digest": release.digest,
        "image": release.image,
        "git_sha": release.git_sha,
        "commit_message": release.commit_message,
        "commit_url": release.commit_url,
        "registered_by": release.registered_by_name,
        "created_at": release.created_at.isoformat(),
    }


def environment_json(env: Environment) -> dict:
    lock = getattr(env, "lock", None)
    return {
        "name": env.name,
        "tier": env.tier,
        "region": env.aws_region,
        "strategy": env.strategy,
        "live_release": release_json(env.live_release) if env.live_release else None,
        "live_color": env.live_color if env.strategy == "blue_green" else None,
        "locked": lock is not None,
        "lock_reason": lock.describe() if lock else None,
        "required_approvals": env.required_approvals,
    }


def _string(body: dict, name: str, required: bool = True, max_length: int | None = None) -> str:
    """A string field of the body, as deployments/openapi.py describes it."""
    value = body.get(name, "")
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string.", "invalid")
    if required and not value.strip():
        raise BadRequest(f"{name} is required.", "invalid")
    if max_length is not None and len(value) > max_length:
        raise BadRequest(f"{name} is longer than {max_length} characters.", "invalid")
    return value


@api_endpoint("GET")
def environments(request):
    require(request, Action.VIEW)
    envs = Environment.objects.select_related("live_release", "lock")
    env_ids = visible_environment_ids(principal_of(request))
    if env_ids is not None:
        envs = envs.filter(pk__in=env_ids)
    return JsonResponse({"environments": [environment_json(env) for env in envs]})


@csrf_exempt
@api_endpoint("GET", "POST")
def releases(request):
    if request.method == "GET":
        require(request, Action.VIEW)
        page = keyset_page(Release.objects.all(), "id", query_before(request))
        return JsonResponse({"releases": [release_json(r) for r in page.items], "next_before": page.next_before})
    enforce_csrf_for_session(request)
    body = json_body(request)
    try:
        release, created = services.register_release(
            principal_of(request),
            repository=_string(body, "repository", max_length=REPOSITORY_LENGTH),
            tag=_string(body, "tag"),
            digest=_string(body, "digest"),
            git_sha=_string(body, "git_sha", False).strip(),  # surrounding blanks ignored, as around a tag
            commit_message=_string(body, "commit_message", False),
            commit_url=_string(body, "commit_url", False),
        )
    except NotPermitted as exc:
        raise PermissionDenied(str(exc)) from None
    except Refused as exc:
        raise refusal(exc) from None
    return JsonResponse(release_json(release), status=201 if created else 200)


def _release_from(body: dict) -> Release:
    if "release_id" in body and "digest" in body:
        by_id, by_digest = _release_from({"release_id": body["release_id"]}), _release_from({"digest": body["digest"]})
        if by_id.pk != by_digest.pk:
            raise BadRequest("release_id and digest name two different releases; give one of them.", "invalid")
        return by_id
    if "release_id" in body:
        release_id = body["release_id"]
        if not isinstance(release_id, int) or isinstance(release_id, bool) or not 0 < release_id <= MAX_ID:
            raise BadRequest("release_id must be a positive integer: a release's id.", "invalid")
        release = Release.objects.filter(pk=release_id).first()
    elif "digest" in body:
        release = Release.objects.filter(digest=_string(body, "digest")).first()
    else:
        raise BadRequest("Give release_id or digest.", "invalid")
    if release is None:
        raise BadRequest("There is no such release; register it first.", "unknown_release")
    return release


def _request(request, name: str, action):
    enforce_csrf_for_session(request)
    environment = environment_for(request, name, Action.VIEW)
    if not allowed(principal_of(request), Action.DEPLOY, environment):  # before reading what it asks
        raise PermissionDenied(f"You do not have permission to deploy to {environment}.")
    body = json_body(request)
    release = _release_from(body)
    reason = body.get("override_reason", "")
    if not isinstance(reason, str):
        raise BadRequest("override_reason must be a string.", "invalid")
    try:
        run = action(environment, release, principal_of(request), override_reason=reason)
    except NotPermitted as exc:
        raise PermissionDenied(str(exc)) from None
    except Refused as exc:
        return refusal_answer(exc, CONFLICT_CODES)  # a duplicate or busy names the run: "run", "url"
    return JsonResponse(run_json(run), status=202)


@csrf_exempt
@api_endpoint("POST")
@idempotent
def deploy(request, name: str):
    return _request(request, name, services.request_deploy)


@csrf_exempt
@api_endpoint("POST")
@idempotent
def rollback(request, name: str):
    return _request(request, name, services.request_rollback)
