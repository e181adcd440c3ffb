"""The OpenAPI 3 document served at /api/v1/openapi.json, assembled from what each part of the
console contributes: the core describes runs, each app its own paths and schemas
(`contribute()` from its AppConfig.ready(), beside the code it describes).

The document is what tests/security/test_api_fuzzing.py generates requests from, and a request it
calls valid must not be refused as malformed. So a string's `pattern` spells its characters out
(BLANK, never `\\s`, which Python, Python's ASCII reading and the validators each read differently),
and where the API would refuse a final newline as malformed, a pattern does not simply end in `$`
(Python's `$` also matches before a final newline: the tag's pattern allows the blanks the API
strips around it)."""

from __future__ import annotations

import copy

from django.http import JsonResponse

from opsconsole.api import MAX_ID, api_endpoint

ERROR = {"$ref": "#/components/schemas/Error"}

# The characters str.strip() removes, each spelled out: a value that is "required" once stripped
# (a reason, a repository) has the pattern NOT_BLANK, which every regex reading agrees on.
BLANK = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NOT_BLANK = f"[^{BLANK}]"


def json_answer(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def page(key: str, schema: str) -> dict:
    """A 200 answer holding one page of `schema` items under `key`, and the cursor to the next."""
    items = {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}}
    return json_answer(
        {
            "type": "object",
            "required": [key],
            "properties": {key: items, "next_before": {"type": "integer", "nullable": True}},
        }
    )


ERRORS = {
    "400": json_answer(ERROR, "Bad input; nothing changed"),
    "401": json_answer(ERROR, "No valid token: unknown, revoked, owner deactivated, or expired (code token_expired)"),
    "403": json_answer(ERROR, "The token or user may not do this"),
    "413": json_answer(ERROR, "The body is larger than the console accepts (DATA_UPLOAD_MAX_MEMORY_SIZE)"),
}
# For a request that queues a run: the broker is down, so nothing was started (code queue_unavailable).
QUEUE_DOWN = {"503": json_answer(ERROR, "The job queue is unreachable; nothing was started, try again")}

NO_SUCH_ENVIRONMENT = (
    "No environment by that name (not_found), told to a caller who sees every environment; to one who does not, "
    "a name no environment has is the same 403 as an environment out of its reach"
)

RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
ENV_NAME_PATTERN = "^[-a-zA-Z0-9_]+$"
ENV_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": ENV_NAME_PATTERN},
    "example": "staging",
}
BEFORE = {
    "name": "before",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    "description": "Keyset pagination: items with an id below this one. Given once.",
}

PATHS: dict[str, dict] = {}
SCHEMAS: dict[str, dict] = {}


def contribute(paths: dict[str, dict], schemas: dict[str, dict]) -> None:
    """Add an app's paths and schemas; a path or schema two parts both describe is a mistake."""
    for name, described, into in (("path", paths, PATHS), ("schema", schemas, SCHEMAS)):
        clash = (described.keys() & into.keys()) - {key for key in described if into.get(key) is described[key]}
        if clash:
            raise ValueError(f"OpenAPI {name}(s) described twice: {sorted(clash)}")
        into.update(described)


def document() -> dict:
    runs = _runs_paths()
    if runs.keys() & PATHS.keys():
        raise ValueError(f"OpenAPI path(s) described twice: {sorted(runs.keys() & PATHS.keys())}")
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Ops Console API",
            "version": "1",
            "description": "Authenticate with `Authorization: Bearer <token>` (create tokens on the API tokens page).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {**runs, **copy.deepcopy(PATHS)},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": copy.deepcopy(SCHEMAS),
        },
    }


@api_endpoint("GET")
def openapi(request):
    return JsonResponse(document())


# The core's own part: runs. Built with each document, so it lists the run kinds registered by then
# (each app registers its own); it uses opsconsole.runs.openapi, which builds on this module.
def _runs_paths() -> dict:
    from opsconsole.runs.models import Status
    from opsconsole.runs.openapi import IDEMPOTENCY_KEY, KEY_REUSED, REFUSAL, started
    from opsconsole.runs.registry import REGISTRY, EnvironmentUse

    kinds = sorted(name for name, kind in REGISTRY.items() if not kind.only_through)
    through_service = sorted(name for name, kind in REGISTRY.items() if kind.only_through)
    body = {
        "type": "object",
        "required": ["kind"],
        "properties": {
            "kind": {"type": "string", "enum": kinds},
            "environment": {"type": "string", "pattern": ENV_NAME_PATTERN, "description": "The environment's name."},
            "params": {
                "type": "object",
                "description": "What the kind lets its caller choose (docs/security.md, Launch contracts); "
                "a kind refuses anything else with 400 params_refused.",
            },
        },
    }
    if all(REGISTRY[kind].environment is EnvironmentUse.REQUIRED for kind in kinds):
        body["required"].append("environment")
    return {
        "/api/v1/runs": {
            "get": {
                "summary": "Runs, newest first",
                "parameters": [
                    BEFORE,
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": list(Status.values)},
                        "description": "Only runs in this state. Given once.",
                    },
                ],
                "responses": {
                    "200": page("runs", "Run"),
                    **ERRORS,
                },
            },
            "post": {
                "summary": "Start a run of any kind the token may start",
                "description": (
                    "The kinds that start only through their own door (" + ", ".join(through_service) + ") are "
                    "refused here with 400 `use_service`, naming the door. A request identical to a run of the "
                    "environment still awaiting approval, queued or running is refused 409 `duplicate`, with `run` "
                    "and `url` naming that run. Send an `Idempotency-Key` to retry safely."
                ),
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                "responses": {
                    "201": started({"$ref": "#/components/schemas/Run"}, "Created"),
                    **ERRORS,
                    "400": json_answer(
                        ERROR,
                        "Bad input, or the kind refused it; nothing changed: unknown_kind, use_service (the kind "
                        "starts only through the door the message names), environment_required, no_environment, "
                        "invalid (the body's shape), params_refused (its params, or what they name: a policy, "
                        "backup or workspace of this environment)",
                    ),
                    "404": json_answer(ERROR, NO_SUCH_ENVIRONMENT),
                    "409": json_answer(
                        REFUSAL,
                        "The same request is already active (duplicate, naming its run: `run`, `url`), or the "
                        "Idempotency-Key's first request is still being answered (idempotency_in_progress)",
                    ),
                    **KEY_REUSED,
                    **QUEUE_DOWN,
                },
            },
        },
        "/api/v1/runs/{run_id}": {
            "get": {
                "summary": "One run",
                "parameters": [RUN_ID],
                "responses": {
                    "200": json_answer({"$ref": "#/components/schemas/Run"}),
                    "404": json_answer(ERROR, "No such run"),
                    **ERRORS,
                },
            }
        },
        "/api/v1/runs/{run_id}/events": {
            "get": {
                "summary": "A run's events after a sequence number (poll to follow the log)",
                "parameters": [
                    RUN_ID,
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                        "description": "The sequence number of the last event already read. Given once.",
                    },
                ],
                "responses": {
                    "200": json_answer(
                        {
                            "type": "object",
                            "required": ["status", "terminal", "events"],
                            "properties": {
                                "status": {"type": "string"},
                                "terminal": {"type": "boolean"},
                                "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                            },
                        }
                    ),
                    "404": json_answer(ERROR, "No such run"),
                    **ERRORS,
                },
            }
        },
        "/api/v1/runs/{run_id}/cancel": {
            "post": {
                "summary": "Ask a run to stop",
                "parameters": [RUN_ID],
                "responses": {
                    "202": json_answer({"$ref": "#/components/schemas/Run"}, "Cancel requested"),
                    "404": json_answer(ERROR, "No such run"),
                    "409": json_answer(ERROR, "Already ended"),
                    **ERRORS,
                },
            }
        },
    }


contribute(
    {},
    {
        "Error": {
            "type": "object",
            "required": ["error", "code"],
            "properties": {"error": {"type": "string"}, "code": {"type": "string"}},
        },
        "Run": {
            "type": "object",
            "required": ["id", "kind", "status", "terminal"],
            "properties": {
                "id": {"type": "integer"},
                "kind": {"type": "string"},
                "status": {
                    "type": "string",
                    "enum": [
                        "awaiting_approval",
                        "queued",
                        "running",
                        "rolling_back",
                        "succeeded",
                        "failed",
                        "errored",
                        "canceled",
                        "rolled_back",
                    ],
                },
                "environment": {"type": "string", "nullable": True},
                "params": {"type": "object"},
                "result": {"type": "object"},
                "error": {"type": "string"},
                "requested_by": {"type": "string"},
                "created_at": {"type": "string", "format": "date-time"},
                "started_at": {"type": "string", "format": "date-time", "nullable": True},
                "finished_at": {"type": "string", "format": "date-time", "nullable": True},
                "cancel_requested": {"type": "boolean"},
                "terminal": {"type": "boolean"},
            },
        },
        "Event": {
            "type": "object",
            "required": ["seq", "at", "level", "message"],
            "properties": {
                "seq": {"type": "integer"},
                "at": {"type": "string", "format": "date-time"},
                "level": {"type": "string"},
                "message": {"type": "string"},
                "data": {"type": "object"},
            },
        },
    },
)
