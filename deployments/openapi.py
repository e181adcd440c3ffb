"""The OpenAPI 3 document served at /api/v1/openapi.json (kept beside the code it describes)."""

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _page(key: str, schema: str) -> dict:
    """A 200 answer holding one page of `schema` items under `key`, and the cursor to the next."""
    items = {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}}
    return _json(
        {
            "type": "object",
            "required": [key],
            "properties": {key: items, "next_before": {"type": "integer", "nullable": True}},
        }
    )


ERRORS = {
    "400": _json(ERROR, "Bad input; nothing changed"),
    "401": _json(ERROR, "No valid token"),
    "403": _json(ERROR, "The token or user may not do this"),
    "413": _json(ERROR, "The body is larger than the console accepts (DATA_UPLOAD_MAX_MEMORY_SIZE)"),
}

RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
ENV_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"}}
BEFORE = {
    "name": "before",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1},
    "description": "Keyset pagination: items with an id below this one.",
}
DEPLOY_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "release_id": {"type": "integer"},
                    "digest": {"type": "string"},
                    "override_reason": {"type": "string", "description": "Admins only: deploy during a freeze window."},
                },
            }
        }
    },
}

DR_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["reason", "confirm"],
                "properties": {
                    "reason": {"type": "string", "description": "Why; kept in the audit log."},
                    "confirm": {"type": "string", "description": "The environment's name, typed exactly."},
                },
            }
        }
    },
}
DR_GUARD = (
    " Needs the `dr` action: a DR operator or admin in a browser session in sudo mode, or a token with the "
    "`dr` scope whose owner is a DR operator or admin there (the owner is the requester for the two-person "
    "rule). Refusals after the permission check are audited as `dr.<operation>.refused` and change nothing else."
)
DR_ERRORS = {
    **ERRORS,
    "404": _json(ERROR, "No DR plan (or no such DR run) for this environment"),
    "409": _json(ERROR, "The state forbids it: busy, cooldown, already failed over, not awaiting approval, expired"),
}


def _dr_request(operation: str) -> dict:
    return {
        "post": {
            "summary": f"Request a DR {operation}; it waits for a second person's approval",
            "description": "Body: a reason and the environment's name typed in `confirm`." + DR_GUARD,
            "parameters": [ENV_NAME],
            "requestBody": DR_REQUEST_BODY,
            "responses": {"202": _json({"$ref": "#/components/schemas/DRRequest"}, "Awaiting approval"), **DR_ERRORS},
        }
    }


DOCUMENT = {
    "openapi": "3.0.3",
    "info": {
        "title": "Ops Console API",
        "version": "1",
        "description": "Authenticate with `Authorization: Bearer <token>` (create tokens on the API tokens page).",
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/environments": {
            "get": {
                "summary": "Environments with their live release and state",
                "responses": {
                    "200": _json(
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
                "parameters": [ENV_NAME],
                "requestBody": DEPLOY_BODY,
                "responses": {
                    "202": _json({"$ref": "#/components/schemas/Run"}, "The run was created"),
                    "409": _json(ERROR, "Locked, frozen, failed over to DR, or another run is active"),
                    "404": _json(ERROR, "The name cannot be an environment's (an unknown one is a 400)"),
                    **ERRORS,
                },
            }
        },
        "/api/v1/environments/{name}/rollback": {
            "post": {
                "summary": "Request a rollback to an earlier good release",
                "parameters": [ENV_NAME],
                "requestBody": DEPLOY_BODY,
                "responses": {
                    "202": _json({"$ref": "#/components/schemas/Run"}, "The run was created"),
                    "409": _json(ERROR, "Locked, frozen, failed over to DR, busy, or not a good release"),
                    "404": _json(ERROR, "The name cannot be an environment's (an unknown one is a 400)"),
                    **ERRORS,
                },
            }
        },
        "/api/v1/dr": {
            "get": {
                "summary": "DR plans with their latest readiness check",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["plans"],
                            "properties": {
                                "plans": {"type": "array", "items": {"$ref": "#/components/schemas/DRPlan"}}
                            },
                        }
                    ),
                    **ERRORS,
                },
            }
        },
        "/api/v1/dr/{name}": {
            "get": {
                "summary": "One environment's DR plan and its latest readiness check",
                "parameters": [ENV_NAME],
                "responses": {"200": _json({"$ref": "#/components/schemas/DRPlan"}), **DR_ERRORS},
            }
        },
        "/api/v1/dr/{name}/operations": {
            "get": {
                "summary": "Failovers, drills and failbacks, newest first, with their measured RTO and RPO",
                "parameters": [
                    ENV_NAME,
                    BEFORE,
                    {
                        "name": "operation",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["failover", "drill", "failback"]},
                    },
                ],
                "responses": {
                    "200": _page("operations", "DROperation"),
                    **DR_ERRORS,
                },
            }
        },
        "/api/v1/dr/{name}/failover": _dr_request("failover"),
        "/api/v1/dr/{name}/drill": _dr_request("drill"),
        "/api/v1/dr/{name}/failback": _dr_request("failback"),
        "/api/v1/dr/{name}/runs/{run_id}/decide": {
            "post": {
                "summary": "Approve or reject a DR request (another person than the requester)",
                "description": "A reject needs a comment; one approval queues the run and starts the RTO clock."
                + DR_GUARD,
                "parameters": [ENV_NAME, RUN_ID],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["decision"],
                                "properties": {
                                    "decision": {"type": "string", "enum": ["approve", "reject"]},
                                    "comment": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": {"200": _json({"$ref": "#/components/schemas/DRRequest"}, "Recorded"), **DR_ERRORS},
            }
        },
        "/api/v1/releases": {
            "get": {
                "summary": "Releases, newest first",
                "parameters": [BEFORE],
                "responses": {
                    "200": _page("releases", "Release"),
                    **ERRORS,
                },
            },
            "post": {
                "summary": "Register a built image (idempotent on the digest)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["repository", "tag", "digest"],
                                "properties": {
                                    "repository": {"type": "string"},
                                    "tag": {"type": "string"},
                                    "digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
                                    "git_sha": {"type": "string"},
                                    "commit_message": {"type": "string"},
                                    "commit_url": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json({"$ref": "#/components/schemas/Release"}, "Registered"),
                    "200": _json({"$ref": "#/components/schemas/Release"}, "Already registered"),
                    **ERRORS,
                },
            },
        },
        "/api/v1/runs": {
            "get": {
                "summary": "Runs, newest first",
                "parameters": [
                    BEFORE,
                    {"name": "status", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _page("runs", "Run"),
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
                "responses": {"201": _json({"$ref": "#/components/schemas/Run"}, "Created"), **ERRORS},
            },
        },
        "/api/v1/runs/{run_id}": {
            "get": {
                "summary": "One run",
                "parameters": [RUN_ID],
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Run"}),
                    "404": _json(ERROR, "No such run"),
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
                    "200": _json(
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
                    "404": _json(ERROR, "No such run"),
                    **ERRORS,
                },
            }
        },
        "/api/v1/runs/{run_id}/cancel": {
            "post": {
                "summary": "Ask a run to stop",
                "parameters": [RUN_ID],
                "responses": {
                    "202": _json({"$ref": "#/components/schemas/Run"}, "Cancel requested"),
                    "404": _json(ERROR, "No such run"),
                    "409": _json(ERROR, "Already ended"),
                    **ERRORS,
                },
            }
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "code"],
                "properties": {"error": {"type": "string"}, "code": {"type": "string"}},
            },
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
            "DRPlan": {
                "type": "object",
                "required": ["environment", "primary_region", "dr_region", "active_site"],
                "properties": {
                    "environment": {"type": "string"},
                    "primary_region": {"type": "string"},
                    "dr_region": {"type": "string"},
                    "active_site": {"type": "string", "enum": ["primary", "dr"]},
                    "hosted_zone_id": {"type": "string"},
                    "record_name": {"type": "string"},
                    "record_type": {"type": "string"},
                    "primary_target": {"type": "string"},
                    "dr_target": {"type": "string"},
                    "drill_record_name": {"type": "string"},
                    "dr_db_instance": {"type": "string"},
                    "dr_ecs_cluster": {"type": "string"},
                    "dr_ecs_service": {"type": "string"},
                    "dr_desired_count": {"type": "integer"},
                    "terraform_var_file": {"type": "string"},
                    "terraform_workspace": {"type": "string"},
                    "rpo_minutes": {"type": "integer"},
                    "rto_minutes": {"type": "integer"},
                    "approval_window_minutes": {"type": "integer"},
                    "cooldown_minutes": {"type": "integer"},
                    "active_run": {"type": "integer", "nullable": True},
                    "failover_cooldown_until": {"type": "string", "format": "date-time", "nullable": True},
                    "readiness": {
                        "type": "object",
                        "nullable": True,
                        "properties": {
                            "ok": {"type": "boolean"},
                            "checked_at": {"type": "string", "format": "date-time"},
                            "requested_by": {"type": "string"},
                            "items": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["name", "ok", "detail", "at"],
                                    "properties": {
                                        "name": {"type": "string"},
                                        "ok": {"type": "boolean"},
                                        "detail": {"type": "string"},
                                        "at": {"type": "string", "format": "date-time"},
                                        "changes": {"type": "array", "items": {"type": "object"}},
                                    },
                                },
                            },
                        },
                    },
                },
            },
            "DROperation": {
                "type": "object",
                "required": ["run", "operation", "status"],
                "properties": {
                    "run": {"type": "integer"},
                    "operation": {"type": "string", "enum": ["failover", "drill", "failback"]},
                    "status": {"type": "string"},
                    "reason": {"type": "string"},
                    "requested_by": {"type": "string"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "approved_at": {"type": "string", "format": "date-time", "nullable": True},
                    "resumes": {"type": "integer", "nullable": True},
                    "snapshot": {"type": "string", "nullable": True},
                    "snapshot_at": {"type": "string", "format": "date-time", "nullable": True},
                    "dns_switched_at": {"type": "string", "format": "date-time", "nullable": True},
                    "rto_seconds": {"type": "number", "nullable": True},
                    "rpo_seconds": {"type": "number", "nullable": True},
                    "rto_met": {"type": "boolean", "nullable": True},
                    "rpo_met": {"type": "boolean", "nullable": True},
                    "torn_down": {"type": "boolean"},
                },
            },
            "DRRequest": {
                "type": "object",
                "required": ["run", "operation"],
                "properties": {
                    "run": {"$ref": "#/components/schemas/Run"},
                    "operation": {"$ref": "#/components/schemas/DROperation"},
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
    },
}
