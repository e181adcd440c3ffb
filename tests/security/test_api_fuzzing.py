"""API fuzzing: schemathesis, with every check it has, against a live server and 0 failures.

`schemathesis run` reads /api/v1/openapi.json of a live server and sends generated requests to every
operation the document describes (so an endpoint added to the document is fuzzed the day it is
added): its examples, coverage (boundary and schema-violating values of each parameter), fuzzing
(Hypothesis) and stateful (chains of requests through the inferred links) phases, schema-valid
and schema-invalid data. Every check schemathesis has runs (`--checks all`): no 5xx; every status
code, content type, header and body as the document says; schema-invalid requests refused and
schema-valid ones accepted; 405 with an Allow header for an unsupported method; nothing created
that cannot be read back. `max_response_time` is not among them: it runs only with a time limit,
and tests never assert timings.

The checks that need principals have them, from a Web Fuzzing Commons document listing two tokens
holding every scope, one scoped to staging and one to production. Every request is sent as staging.
- `ignored_auth`: each operation is sent again without credentials and with invalid ones, and must
  answer 401 (or 403).
- `object_level_authorization`: production is staging's peer. What staging reads of its own (a run,
  a DR plan, an environment: ids and names from its lists and from what it created) is read again
  as production, which must not get it. (Sending requests as both in turn, schemathesis' default
  with several users, settles each operation on one of them and leaves nothing to compare: a leak
  planted to try it, any token reading any run, went unnoticed that way and is found this way.)

The verdict is reproducible: Hypothesis' derandomize (`--generation-deterministic`; no seed is
drawn at all), one worker, a fixed example budget, no stored examples, and runs that are queued
but never executed (no job's timing enters the answers). `make fuzz` runs the same test with
FUZZ_SEED=random (or a seed, to repeat a run) and a bigger budget (FUZZ_EXAMPLES); anything it
finds is fixed and kept below, in FOUND, as a plain request with the answer it must get.

Two settings narrow what the checks take as a failure, each for a rule the document states but
JSON Schema cannot express:
- ALSO_ACCEPTED: statuses a schema-valid request may get besides 2xx, 401, 403, 404, 409 and 429,
  per operation, each with its reason (a release that does not exist, a confirmation that is not
  the environment's name, a kind's own params, a repeated Idempotency-Key).
- `allow-x00 = false`: no generated string holds a NUL byte. Every API refuses one (400 naming the
  field; tests/security/test_bad_input.py), a rule of the whole API that the document would have
  to repeat on every string.

The budget, EXAMPLES per operation and phase (20, against 25 schema-valid and 15 schema-invalid of
the four checks before, which had no coverage or stateful phase), keeps the run at about a minute
and a half: some 1,100 requests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import jsonschema_rs
import pytest
import requests
from django.test import Client

from deployments.models import Release
from dr.models import DRPlan
from opsconsole.access.models import Action, ApiToken
from opsconsole.environments.models import Environment, Tier
from opsconsole.runs.models import Run, Status

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
SEED = os.environ.get("FUZZ_SEED", "")  # unset: derandomized; "random": a new seed each run; or a seed to repeat
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
REPORT_DIR = os.environ.get("FUZZ_REPORT_DIR", "")  # where to keep the output and report.json; else a temp dir

# What a schema-valid request may also be answered, per operation (besides 2xx, 401, 403, 404, 409
# and 429), and why: each is a refusal the operation's document lists for a rule JSON Schema cannot
# express.
KEY_REUSED = "a generated Idempotency-Key repeats with another request (idempotency_key_reused)"
ALSO_ACCEPTED = {
    **{
        ("POST", f"/api/v1/environments/{{name}}/{action}"): {
            "400": "no such release (unknown_release), or release_id and digest name two different ones",
            "422": KEY_REUSED,
        }
        for action in ("deploy", "rollback")
    },
    **{
        ("POST", f"/api/v1/dr/{{name}}/{operation}"): {
            "400": "`confirm` is not the environment's name (name_mismatch)",
            "422": KEY_REUSED,
        }
        for operation in ("failover", "drill", "failback")
    },
    ("POST", "/api/v1/runs"): {
        "400": "`params` the kind refuses: each kind's own rules (docs/security.md), not in the document",
        "422": KEY_REUSED,
    },
}


def dr_plan(environment) -> DRPlan:
    return DRPlan.objects.create(
        environment=environment,
        hosted_zone_id="Z1",
        record_name="api.example.com.",
        drill_record_name="drill.api.example.com.",
        primary_target="primary.example.com",
        dr_target="dr.example.com",
        db_source_identifier="db",
        dr_db_instance="db-dr",
        dr_ecs_cluster="dr",
        dr_ecs_service="api-dr",
        dr_smoke_url="http://127.0.0.1:9/",
    )


@pytest.fixture
def tokens(transactional_db, django_user_model, settings) -> Iterator[dict[str, str]]:
    """Two environments with something in each (a run, a DR plan), a release, and a token for each
    environment holding every scope. Runs are queued (the queue is checked for real) and never
    executed."""
    settings.OPSCONSOLE_QUEUE = "celery"
    owner = django_user_model.objects.create_superuser("fuzz-owner", "f@example.com", "x" * 20)
    ecs = {"ecs_cluster": "c", "ecs_service": "s", "container_name": "api"}  # deployable, never deployed
    staging = Environment.objects.create(name="staging", tier=Tier.STAGING, **ecs)
    production = Environment.objects.create(name="production", tier=Tier.PRODUCTION, required_approvals=1, **ecs)
    Release.objects.create(repository="r", tag="v1", digest="sha256:" + "1" * 64, registered_by_name="ci")
    for environment in (staging, production):
        Run.objects.create(kind="maintenance.selftest", environment=environment, status=Status.SUCCEEDED, params={})
        dr_plan(environment)
    scopes = list(Action.values)
    with mock.patch("opsconsole.runs.dispatch.dispatch"):
        yield {
            "staging": ApiToken.issue("fuzz-staging", scopes, [staging], created_by=owner)[1],
            "production": ApiToken.issue("fuzz-production", scopes, [production], created_by=owner)[1],
        }


def configuration(directory: Path, tokens: dict[str, str]) -> Path:
    """The WFC document with the two tokens, and schemathesis.toml: every request is sent as staging,
    and production is its peer; the settings of ALSO_ACCEPTED and `allow-x00`."""
    auth = directory / "auth.json"
    entries = [
        {"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {raw}"}]}
        for name, raw in tokens.items()
    ]
    auth.write_text(json.dumps({"auth": entries}))
    lines = [
        "[auth.wfc]",
        f"path = {json.dumps(str(auth))}",
        'user = "staging"',
        'peers = ["staging", "production"]',
        "",
        "[generation]",
        "allow-x00 = false",
    ]
    for (method, path), statuses in ALSO_ACCEPTED.items():
        accepted = ["2xx", "401", "403", "404", "409", "429", *statuses]
        lines += [
            "",
            "[[operations]]",
            f'include-method = "{method}"',
            f'include-path = "{path}"',
            f"checks.positive_data_acceptance.expected-statuses = {json.dumps(accepted)}",
        ]
    config = directory / "schemathesis.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


@pytest.mark.timeout(120 + 10 * EXAMPLES)
def test_the_api_answers_every_generated_request_as_its_document_says(live_server, tokens, tmp_path):
    directory = Path(REPORT_DIR).resolve() if REPORT_DIR else tmp_path
    directory.mkdir(parents=True, exist_ok=True)
    document = directory / "openapi.json"
    document.write_text(
        requests.get(
            f"{live_server.url}/api/v1/openapi.json",
            headers={"Authorization": f"Bearer {tokens['staging']}"},
            timeout=30,
        ).text
    )
    argv = [
        SCHEMATHESIS,
        "--config-file",
        str(configuration(directory, tokens)),
        "run",
        str(document),
        "--url",
        live_server.url,
        "--checks",
        "all",
        "--workers",
        "1",
        "--max-examples",
        str(EXAMPLES),
        "--continue-on-failure",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(directory / "report.json"),
    ]
    if not SEED:
        argv += ["--generation-deterministic"]  # Hypothesis' derandomize: no seed at all
    else:
        argv += ["--generation-database", "none", *(["--seed", SEED] if SEED != "random" else [])]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, cwd=directory, timeout=1800)
    seconds = time.monotonic() - started
    (directory / "schemathesis.txt").write_text(result.stdout + result.stderr)
    assert (directory / "report.json").exists(), result.stdout + result.stderr
    report = json.loads((directory / "report.json").read_text())
    summary = (
        f"seed {report['seed'] if SEED else 'none (derandomized)'}, {report['operations']['tested']} operations, "
        f"{report['test_cases']['generated']} test cases, {seconds:.0f} s, "
        f"{report['test_cases']['unique_failures']} failures"
    )
    print(f"schemathesis: {summary}")
    assert result.returncode == 0, f"{summary}\n\n{result.stdout[-30000:]}{result.stderr[-5000:]}"
    assert report["operations"]["tested"] >= 17 and not report["errors"]


def test_the_document_is_served_and_lists_every_api_route(live_server, tokens):
    """The fuzzing above covers what the document lists; this says the document lists every
    /api/v1/ route of the URL conf, so an undocumented endpoint cannot escape it."""
    from tests.access.test_authorization_matrix import ROUTES

    headers = {"Authorization": f"Bearer {tokens['staging']}"}
    document = requests.get(f"{live_server.url}/api/v1/openapi.json", headers=headers, timeout=30).json()
    documented = {path.removeprefix("/") for path in document["paths"]}
    routes = {
        route.replace("<slug:name>", "{name}").replace("<id:run_id>", "{run_id}")
        for route in ROUTES
        if route.startswith("api/v1/") and route != "api/v1/openapi.json"
    }
    assert routes, "no API routes found"
    assert routes <= documented, f"API routes missing from the OpenAPI document: {sorted(routes - documented)}"


# --- What the fuzzing found ------------------------------------------------------------------------
# (method, path, query, body, the status it must get, whether the document calls the request valid).
# The document's verdict is checked too, so the API and its document cannot drift apart again.
DIGEST = "sha256:" + "0" * 64
FOUND = [
    # A status the document's enum does not list, and an empty one (the document had any string).
    ("GET", "/api/v1/runs", {"status": "\U000b7503±"}, None, 400, False),
    ("GET", "/api/v1/runs", {"status": ""}, None, 400, False),
    ("GET", "/api/v1/dr/staging/operations", {"operation": ""}, None, 400, False),
    # A query parameter given twice, or not a whole number (after=true&after=false was read as 0).
    ("GET", "/api/v1/runs/{run}/events", {"after": ["true", "false"]}, None, 400, False),
    ("GET", "/api/v1/runs/{run}/events", {"after": "x"}, None, 400, False),
    ("GET", "/api/v1/runs", {"before": ["5", "6"]}, None, 400, False),
    ("GET", "/api/v1/runs", {"status": ["queued", "failed"]}, None, 400, False),
    ("GET", "/api/v1/dr/staging/operations", {"operation": ["drill", "drill"]}, None, 400, False),
    ("GET", "/api/v1/runs/{run}/events", {"after": "3"}, None, 200, True),
    # An empty cursor is not "no cursor" (GET /api/v1/releases?before= was a 200).
    ("GET", "/api/v1/releases", {"before": ""}, None, 400, False),
    # A release's repository is required and not blank, as the document now says; blanks around a tag
    # are what the service strips.
    ("POST", "/api/v1/releases", {}, {"repository": "", "tag": "", "digest": DIGEST}, 400, False),
    ("POST", "/api/v1/releases", {}, {"repository": "\u2003", "tag": "v1", "digest": DIGEST}, 400, False),
    ("POST", "/api/v1/releases", {}, {"repository": "r", "tag": " v1\n", "digest": DIGEST}, 201, True),
    # A kind the document does not list: none, or one that starts only through its own door.
    ("POST", "/api/v1/runs", {}, {"kind": ""}, 400, False),
    ("POST", "/api/v1/runs", {}, {"kind": "deployments.deploy", "environment": "staging"}, 400, False),
    ("POST", "/api/v1/runs", {}, {"kind": "maintenance.selftest", "environment": "staging", "params": []}, 400, False),
    # A deploy names a release by a digest of the documented form (an empty one was "required").
    ("POST", "/api/v1/environments/staging/deploy", {}, {"release_id": 1, "digest": ""}, 400, False),
    # A name no environment has, to a token that sees every environment (it was a 400).
    ("POST", "/api/v1/environments/nowhere/deploy", {}, {"release_id": 1}, 404, True),
]


def _operation(document: dict, method: str, path: str) -> dict:
    template = next(
        documented
        for documented in document["paths"]
        if documented.count("/") == path.count("/")
        and all(a == b or a.startswith("{") for a, b in zip(documented.split("/"), path.split("/"), strict=True))
    )
    return document["paths"][template][method.lower()]


def _document_says_valid(document: dict, method: str, path: str, query: dict, body: dict | None) -> bool:
    """Whether the document's schemas admit this query and body (a query value arrives as a string:
    one that spells an integer is read as one; a parameter given twice is a list, which none is)."""
    operation = _operation(document, method, path)
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "query" or parameter["name"] not in query:
            continue
        value = query[parameter["name"]]
        if isinstance(value, list):
            return False
        if parameter["schema"].get("type") == "integer":
            if not value.isascii() or not value.lstrip("-").isdigit():
                return False
            value = int(value)
        if not jsonschema_rs.validator_for(parameter["schema"]).is_valid(value):
            return False
    if body is None:
        return True
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema_rs.validator_for(schema).is_valid(body)


@pytest.mark.parametrize(("method", "path", "query", "body", "status", "valid"), FOUND)
def test_what_fuzzing_found_stays_fixed(db, django_user_model, settings, method, path, query, body, status, valid):
    settings.OPSCONSOLE_QUEUE = "celery"
    owner = django_user_model.objects.create_superuser("fuzz-owner", "f@example.com", "x" * 20)
    staging = Environment.objects.create(name="staging", tier=Tier.STAGING)
    dr_plan(staging)
    run = Run.objects.create(kind="maintenance.selftest", environment=staging, status=Status.SUCCEEDED, params={})
    path = path.format(run=run.pk)
    _, raw = ApiToken.issue("fuzz", list(Action.values), created_by=owner)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    with mock.patch("opsconsole.runs.dispatch.dispatch"):
        if method == "GET":
            response = client.get(path, query)
        else:
            response = client.post(path, json.dumps(body), content_type="application/json")
    assert response.status_code == status, response.content
    document = client.get("/api/v1/openapi.json").json()
    assert _document_says_valid(document, method, path, query, body) == valid
