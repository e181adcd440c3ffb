"""The deployments app's part of the OpenAPI document (opsconsole/openapi.py): environments,
deploy, rollback and releases."""

from deployments.api import REPOSITORY_LENGTH
from deployments.models import DIGEST_PATTERN, TAG_PATTERN
from opsconsole.api import MAX_ID
from opsconsole.openapi import (
    BEFORE,
    BLANK,
    ENV_NAME,
    ERROR,
    ERRORS,
    NO_SUCH_ENVIRONMENT,
    NOT_BLANK,
    QUEUE_DOWN,
    json_answer,
    page,
)
from opsconsole.runs.openapi import IDEMPOTENCY_KEY, KEY_REUSED, REFUSAL, started

DEPLOY_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "The release to deploy: its id or its digest (both: they must name the same one).",
                "anyOf": [{"required": ["release_id"]}, {"required": ["digest"]}],
                "example": {"release_id": 1},
                "properties": {
                    "release_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                    "digest": {"type": "string", "pattern": DIGEST_PATTERN.pattern},
                    "override_reason": {"type": "string", "description": "Admins only: deploy during a freeze window."},
                },
            }
        }
    },
}


def _stripped(pattern: str) -> str:
    """A pattern of a value the service strips first: blanks around it are allowed."""
    return f"^[{BLANK}]*{pattern.removeprefix('^').removesuffix('$')}[{BLANK}]*$"


RELEASE_BODY = {
    "type": "object",
    "required": ["repository", "tag", "digest"],
    "description": "Blanks around a tag, digest or git_sha are ignored.",
    "properties": {
        "repository": {"type": "string", "maxLength": REPOSITORY_LENGTH, "pattern": NOT_BLANK},
        "tag": {"type": "string", "pattern": _stripped(TAG_PATTERN.pattern)},
        "digest": {"type": "string", "pattern": _stripped(DIGEST_PATTERN.pattern)},
        "git_sha": {"type": "string", "pattern": _stripped("[0-9a-fA-F]{0,40}")},
        "commit_message": {"type": "string"},
        "commit_url": {"type": "string", "anyOf": [{"maxLength": 0}, {"pattern": "^https?://"}]},
    },
}

DUPLICATES = (
    "A request identical to a run still queued, awaiting approval or running in the environment (a deploy: "
    "the same image and strategy; a rollback: the same release) is refused 409 `duplicate`, with `run` and "
    "`url` naming that run. Send an `Idempotency-Key` to retry safely: a repeat gets the first answer."
)

PATHS = {
    "/api/v1/environments": {
        "get": {
            "summary": "Environments with their live release and state",
            "responses": {
                "200": json_answer(
                    {
                        "type": "object",
                        "required": ["environments"],
                        "properties": {
                            "environments": {"type": "array", "items": {"$ref": "#/components/schemas/Environment"}}
                        },
                    }
                ),
                **ERRORS,
            },
        }
    },
    "/api/v1/environments/{name}/deploy": {
        "post": {
            "summary": "Request a deploy of a release",
            "description": DUPLICATES,
            "parameters": [ENV_NAME, IDEMPOTENCY_KEY],
            "requestBody": DEPLOY_BODY,
            "responses": {
                "202": started({"$ref": "#/components/schemas/Run"}, "The run was created"),
                "409": json_answer(
                    REFUSAL,
                    "The same deploy is already active (duplicate, naming its run), another deploy or rollback is "
                    "(busy, naming it), locked, frozen, failed over to DR, or the Idempotency-Key's first request is "
                    "still being answered (idempotency_in_progress)",
                ),
                "404": json_answer(ERROR, NO_SUCH_ENVIRONMENT),
                **KEY_REUSED,
                **ERRORS,
                "400": json_answer(
                    ERROR, "Bad input, or no such release (unknown_release: register it first); nothing changed"
                ),
                **QUEUE_DOWN,
            },
        }
    },
    "/api/v1/environments/{name}/rollback": {
        "post": {
            "summary": "Request a rollback to an earlier good release",
            "description": DUPLICATES,
            "parameters": [ENV_NAME, IDEMPOTENCY_KEY],
            "requestBody": DEPLOY_BODY,
            "responses": {
                "202": started({"$ref": "#/components/schemas/Run"}, "The run was created"),
                "409": json_answer(
                    REFUSAL,
                    "A rollback to the same release is already active (duplicate, naming its run), another deploy or "
                    "rollback is (busy), locked, frozen, failed over to DR, not a good release, or the "
                    "Idempotency-Key's first request is still being answered (idempotency_in_progress)",
                ),
                "404": json_answer(ERROR, NO_SUCH_ENVIRONMENT),
                **KEY_REUSED,
                **ERRORS,
                "400": json_answer(
                    ERROR, "Bad input, or no such release (unknown_release: register it first); nothing changed"
                ),
                **QUEUE_DOWN,
            },
        }
    },
    "/api/v1/releases": {
        "get": {
            "summary": "Releases, newest first",
            "parameters": [BEFORE],
            "responses": {
                "200": page("releases", "Release"),
                **ERRORS,
            },
        },
        "post": {
            "summary": "Register a built image (idempotent on the digest)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": RELEASE_BODY,
                    }
                },
            },
            "responses": {
                "201": json_answer({"$ref": "#/components/schemas/Release"}, "Registered"),
                "200": json_answer({"$ref": "#/components/schemas/Release"}, "Already registered"),
                **ERRORS,
                "400": json_answer(ERROR, "Bad input (invalid, invalid_tag, invalid_digest); nothing changed"),
            },
        },
    },
}

SCHEMAS = {
    "Release": {
        "type": "object",
        "required": ["id", "repository", "tag", "digest"],
        "properties": {
            "id": {"type": "integer"},
            "repository": {"type": "string"},
            "tag": {"type": "string"},
            "digest": {"type": "string"},
            "image": {"type": "string"},
            "git_sha": {"type": "string"},
            "commit_message": {"type": "string"},
            "commit_url": {"type": "string"},
            "registered_by": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "Environment": {
        "type": "object",
        "required": ["name", "tier", "locked"],
        "properties": {
            "name": {"type": "string"},
            "tier": {"type": "string"},
            "region": {"type": "string"},
            "strategy": {"type": "string"},
            "live_release": {"allOf": [{"$ref": "#/components/schemas/Release"}], "nullable": True},
            "live_color": {"type": "string", "nullable": True},
            "locked": {"type": "boolean"},
            "lock_reason": {"type": "string", "nullable": True},
            "required_approvals": {"type": "integer"},
        },
    },
}
