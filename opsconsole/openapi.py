"""The OpenAPI 3 document served at /api/v1/openapi.json, assembled from what each part of the
console contributes: the core describes runs, each app its own paths and schemas
(`contribute()` from its AppConfig.ready(), beside the code it describes)."""

from __future__ import annotations

import copy

from django.http import JsonResponse

from opsconsole.api import api_endpoint

ERROR = {"$ref": "#/components/schemas/Error"}


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
ENV_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"}}
BEFORE = {
    "name": "before",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1},
    "description": "Keyset pagination: items with an id below this one.",
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
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Ops Console API",
            "version": "1",
            "description": "Authenticate with `Authorization: Bearer <token>` (create tokens on the API tokens page).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": copy.deepcopy(PATHS),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": copy.deepcopy(SCHEMAS),
        },
    }


@api_endpoint("GET")
def openapi(request):
    return JsonResponse(document())


# The core's own part: runs.
contribute(
    {
        "/api/v1/runs": {
            "get": {
                "summary": "Runs, newest first",
                "parameters": [
                    BEFORE,
                    {"name": "status", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": page("runs", "Run"),
                    **ERRORS,
                },
            },
            "post": {
                "summary": "Start a run of any kind the token may start",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["kind"],
                                "properties": {
                                    "kind": {"type": "string"},
                                    "environment": {"type": "string"},
                                    "params": {"type": "object"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": json_answer({"$ref": "#/components/schemas/Run"}, "Created"),
                    "404": json_answer(ERROR, NO_SUCH_ENVIRONMENT),
                    **ERRORS,
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
                    {"name": "after", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
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
    },
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
