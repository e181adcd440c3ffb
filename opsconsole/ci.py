"""`opsconsole-ci`: the console's API from a CI job, with nothing but the standard library.

    opsconsole-ci register-release --repository URI --tag v1.2.3 --digest sha256:... [--git-sha SHA]
    opsconsole-ci deploy --environment staging (--release-id N | --digest sha256:...) [--wait] [--timeout S]

The console URL and API token come from OPSCONSOLE_URL and OPSCONSOLE_TOKEN (never from argv,
which other processes on the runner can read). `deploy --wait` prints the run's events as they
arrive and exits 0 only when the run succeeds. A deploy carries an Idempotency-Key
(from OPSCONSOLE_IDEMPOTENCY_KEY and the request, else a random one) and is sent again with it
when the console could not be reached; when the same deploy is already active, it follows that run.
No Django imports: CI installs the package, or copies this one file, and runs it without settings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable

# Exit codes: 0 succeeded; 1 the run ended badly; 2 bad usage or configuration; 3 the console
# refused the request (4xx) or could not be reached; 4 --timeout passed before the run ended.
EXIT_RUN_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_TIMEOUT = 1, 2, 3, 4
SUCCEEDED = "succeeded"
POLL_SECONDS = 2.0
SEND_ATTEMPTS = 3  # a deploy request that may not have arrived is sent again, with the same key


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_REFUSED, answer: dict | None = None, reached: bool = True):
        super().__init__(message)
        self.code = code
        self.answer = answer or {}  # the console's JSON error body, when it answered one
        self.reached = reached  # False: the request may not have reached the console


class Console:
    """A thin JSON client for /api/v1 with a bearer token."""

    def __init__(self, url: str, token: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def from_environment(cls, environ: dict | None = None) -> Console:
        environ = os.environ if environ is None else environ
        url, token = environ.get("OPSCONSOLE_URL", ""), environ.get("OPSCONSOLE_TOKEN", "")
        if not url:
            raise CliError("OPSCONSOLE_URL is not set (the console's base URL, e.g. https://console.example.com)", 2)
        if not url.startswith(("http://", "https://")):
            raise CliError(f"OPSCONSOLE_URL: expected a URL starting with http:// or https://, got {url!r}", 2)
        if not token:
            raise CliError("OPSCONSOLE_TOKEN is not set (an API token with the deploy scope)", 2)
        return cls(url, token)

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/api/v1/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": "opsconsole-ci",
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            answer = _error_body(exc)
            raise CliError(f"{method} {path}: {exc.code} {_error_message(exc, answer)}", answer=answer) from None
        except urllib.error.URLError as exc:
            raise CliError(f"{method} {path}: cannot reach {self.url}: {exc.reason}", reached=False) from None
        except (TimeoutError, ConnectionError) as exc:
            raise CliError(f"{method} {path}: cannot reach {self.url}: {exc}", reached=False) from None


def _error_body(exc: urllib.error.HTTPError) -> dict:
    try:
        body = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return {}
    return body if isinstance(body, dict) else {}


def _error_message(exc: urllib.error.HTTPError, body: dict) -> str:
    """The console answers errors as {"error": ..., "code": ...}; anything else, the reason phrase."""
    if body.get("error"):
        code = f" ({body['code']})" if body.get("code") else ""
        return f"{body['error']}{code}"
    return exc.reason or "error"


def register_release(console: Console, args: argparse.Namespace, out: Callable[[str], None]) -> int:
    body = {"repository": args.repository, "tag": args.tag, "digest": args.digest}
    for name in ("git_sha", "commit_message", "commit_url"):
        if getattr(args, name):
            body[name] = getattr(args, name)
    release = console.request("POST", "releases", body)
    out(f"release {release['id']}: {release.get('repository')}:{release.get('tag')} {release.get('digest')}")
    if args.output_id:
        with open(args.output_id, "a") as handle:  # e.g. $GITHUB_OUTPUT
            handle.write(f"release_id={release['id']}\n")
    return 0


def deploy(
    console: Console,
    args: argparse.Namespace,
    out: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    body: dict = {"release_id": args.release_id} if args.release_id is not None else {"digest": args.digest}
    if args.override_reason:
        body["override_reason"] = args.override_reason
    path = f"environments/{args.environment}/deploy"
    key = idempotency_key(path, body)
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            run = console.request("POST", path, body, headers={"Idempotency-Key": key})
            break
        except CliError as exc:
            if exc.answer.get("code") == "duplicate" and exc.answer.get("run"):
                # The same deploy is already on its way (another job, or an earlier try): follow it.
                out(f"run {exc.answer['run']}: the same deploy is already active on {args.environment}; following it")
                return (
                    wait_for_run(console, int(exc.answer["run"]), args.timeout, out, sleep, clock) if args.wait else 0
                )
            in_progress = exc.answer.get("code") == "idempotency_in_progress"  # the first try is still running
            if (exc.reached and not in_progress) or attempt == SEND_ATTEMPTS:
                raise
            out(f"{exc}; trying again with the same Idempotency-Key")
            sleep(POLL_SECONDS * attempt)
    out(f"run {run['id']}: {run['kind']} on {args.environment} is {run['status']}")
    if not args.wait:
        return 0
    return wait_for_run(console, run["id"], args.timeout, out, sleep, clock)


def idempotency_key(path: str, body: dict) -> str:
    """One key for every attempt of this request, so a retry after a lost answer gets the first
    answer back instead of a second deploy (the console keeps keys a day). From
    OPSCONSOLE_IDEMPOTENCY_KEY (the CI job and its attempt, e.g. "$GITHUB_RUN_ID-$GITHUB_RUN_ATTEMPT")
    with the request itself, so one job may deploy to two environments and a re-run attempt
    deploys again; without it, a new key each time the command runs."""
    base = os.environ.get("OPSCONSOLE_IDEMPOTENCY_KEY", "")
    if not base:
        return uuid.uuid4().hex
    return hashlib.sha256(json.dumps([base, path, body], sort_keys=True).encode()).hexdigest()


def wait_for_run(
    console: Console,
    run_id: int,
    timeout: float,
    out: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Print events until the run ends; 0 if it succeeded, 1 if not, 4 on timeout."""
    deadline = clock() + timeout
    after = 0
    while True:
        page = console.request("GET", f"runs/{run_id}/events?after={after}")
        for event in page["events"]:
            out(f"{event['at']} {event['level'].upper():7} {event['message']}")
            after = event["seq"]
        if page["terminal"] and not page["events"]:
            break  # ended, and every event up to the end has been printed
        if page["events"]:
            continue  # a long log: keep reading without waiting
        if clock() >= deadline:
            out(f"run {run_id}: still {page['status']} after {timeout:g}s; giving up (the run goes on)")
            return EXIT_TIMEOUT
        sleep(POLL_SECONDS)
    run = console.request("GET", f"runs/{run_id}")
    error = f": {run['error']}" if run.get("error") else ""
    out(f"run {run_id}: {run['status']}{error}")
    return 0 if run["status"] == SUCCEEDED else EXIT_RUN_FAILED


def _digest(value: str) -> str:
    if not value.startswith("sha256:"):
        raise argparse.ArgumentTypeError("expected sha256:<64 hex digits>")
    return value


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="opsconsole-ci",
        description="Register releases and request deploys on the ops console from CI. "
        "Reads OPSCONSOLE_URL and OPSCONSOLE_TOKEN from the environment.",
    )
    commands = top.add_subparsers(dest="command", required=True)

    reg = commands.add_parser("register-release", help="register a built image as a release")
    reg.add_argument("--repository", required=True, help="image repository, e.g. 123.dkr.ecr.../api")
    reg.add_argument("--tag", required=True)
    reg.add_argument("--digest", required=True, type=_digest, help="sha256:... of the pushed image")
    reg.add_argument("--git-sha", default="")
    reg.add_argument("--commit-message", default="")
    reg.add_argument("--commit-url", default="")
    reg.add_argument("--output-id", metavar="FILE", help="append release_id=N to FILE (e.g. $GITHUB_OUTPUT)")
    reg.set_defaults(handler=register_release)

    dep = commands.add_parser("deploy", help="request a deploy, optionally waiting for its outcome")
    dep.add_argument("--environment", required=True)
    which = dep.add_mutually_exclusive_group(required=True)
    which.add_argument("--release-id", type=int)
    which.add_argument("--digest", type=_digest)
    dep.add_argument("--override-reason", default="", help="reason for deploying inside a freeze window")
    dep.add_argument("--wait", action="store_true", help="print the run's events and exit non-zero unless it succeeds")
    dep.add_argument("--timeout", type=float, default=1800, help="seconds to wait with --wait (default 1800)")
    dep.set_defaults(handler=deploy)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def out(line: str) -> None:
        print(line, flush=True)

    try:
        console = Console.from_environment()
        return args.handler(console, args, out)
    except CliError as exc:
        print(f"opsconsole-ci: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("opsconsole-ci: interrupted (a requested run goes on)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
