"""OpenAPI pieces for an endpoint that starts a run, shared by the apps' documents: the
Idempotency-Key header (opsconsole/runs/idempotency.py), the answers it adds, and the refusal that
names a run (a duplicate: the run already asked for)."""

from opsconsole.openapi import ERROR, json_answer

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
    "description": (
        "Any value unique to this request (a UUID, a CI build id). The same key from the same caller within "
        "24 hours answers the first successful answer again (status, body, the same run; header "
        "`Idempotent-Replayed: true`) and starts nothing; with a different request it is a 422 "
        "`idempotency_key_reused`; while the first is still being answered, a 409 `idempotency_in_progress` "
        "(repeat after `Retry-After`). A refusal is not kept: the key may be used again."
    ),
}

REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the answer kept for the Idempotency-Key, not a new request.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}

# A refusal that points at a run: `run` is its id, `url` where the API shows it.
REFUSAL = {
    "allOf": [
        ERROR,
        {"type": "object", "properties": {"run": {"type": "integer"}, "url": {"type": "string"}}},
    ]
}

KEY_REUSED = {
    "422": json_answer(ERROR, "The Idempotency-Key came with a different request before (idempotency_key_reused)")
}


def started(schema: dict, description: str) -> dict:
    """The answer of a request that started a run, replayed for its Idempotency-Key."""
    return {**json_answer(schema, description), "headers": REPLAYED}
