"""The DR app's part of the OpenAPI document (opsconsole/openapi.py): plans, operations and the
guarded failover, drill and failback requests and votes."""

from opsconsole.openapi import (
    BEFORE,
    ENV_NAME,
    ERROR,
    ERRORS,
    NO_SUCH_ENVIRONMENT,
    NOT_BLANK,
    QUEUE_DOWN,
    RUN_ID,
    json_answer,
    page,
)
from opsconsole.runs.openapi import IDEMPOTENCY_KEY, KEY_REUSED, REFUSAL, started

DR_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["reason", "confirm"],
                "example": {"reason": "INC-42: us-east-1 is down", "confirm": "staging"},
                "properties": {
                    "reason": {"type": "string", "pattern": NOT_BLANK, "description": "Why; kept in the audit log."},
                    "confirm": {
                        "type": "string",
                        "description": "The environment's name, typed exactly (else 400 name_mismatch).",
                    },
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
DUPLICATES = (
    " While a failover (drill, failback) of the environment is awaiting approval, queued or running, another "
    "request of it is refused 409 `duplicate` naming that run. Send an `Idempotency-Key` to retry safely."
)
DR_ERRORS = {
    **ERRORS,
    "404": json_answer(ERROR, f"No DR plan (or no such DR run) for this environment. {NO_SUCH_ENVIRONMENT}"),
    "409": json_answer(
        REFUSAL,
        "The state forbids it: the same operation already active (duplicate, naming its run: `run`, `url`), "
        "another one active (busy, naming it), cooldown, already failed over, not awaiting approval, expired, or "
        "the Idempotency-Key's first request is still being answered (idempotency_in_progress)",
    ),
}


DR_REQUEST_REFUSED = {
    "400": json_answer(
        ERROR,
        "Bad input, or the guard refused it (name_mismatch: `confirm` is not the environment's name; "
        "reason_required; no_drill_record: the plan has no drill DNS record); audited, nothing else changed",
    )
}


def _dr_request(operation: str) -> dict:
    return {
        "post": {
            "summary": f"Request a DR {operation}; it waits for a second person's approval",
            "description": "Body: a reason and the environment's name typed in `confirm`." + DR_GUARD + DUPLICATES,
            "parameters": [ENV_NAME, IDEMPOTENCY_KEY],
            "requestBody": DR_REQUEST_BODY,
            "responses": {
                "202": started({"$ref": "#/components/schemas/DRRequest"}, "Awaiting approval"),
                **DR_ERRORS,
                **DR_REQUEST_REFUSED,
                **KEY_REUSED,
                **QUEUE_DOWN,
            },
        }
    }


PATHS = {
    "/api/v1/dr": {
        "get": {
            "summary": "DR plans with their latest readiness check",
            "responses": {
                "200": json_answer(
                    {
                        "type": "object",
                        "required": ["plans"],
                        "properties": {"plans": {"type": "array", "items": {"$ref": "#/components/schemas/DRPlan"}}},
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
            "responses": {"200": json_answer({"$ref": "#/components/schemas/DRPlan"}), **DR_ERRORS},
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
                "200": page("operations", "DROperation"),
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
            "description": "A reject needs a comment; one approval queues the run and starts the RTO clock." + DR_GUARD,
            "parameters": [ENV_NAME, RUN_ID],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "description": "A reject says why in its comment.",
                            "oneOf": [
                                {
                                    "type": "object",
                                    "required": ["decision"],
                                    "properties": {
                                        "decision": {"type": "string", "enum": ["approve"]},
                                        "comment": {"type": "string"},
                                    },
                                },
                                {
                                    "type": "object",
                                    "required": ["decision", "comment"],
                                    "properties": {
                                        "decision": {"type": "string", "enum": ["reject"]},
                                        "comment": {"type": "string", "pattern": NOT_BLANK},
                                    },
                                },
                            ],
                        }
                    }
                },
            },
            "responses": {"200": json_answer({"$ref": "#/components/schemas/DRRequest"}, "Recorded"), **DR_ERRORS},
        }
    },
}

SCHEMAS = {
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
}
