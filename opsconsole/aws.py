"""The one AWS client factory: region, optional assumed role, endpoint override, adaptive retries.

Credentials come from the standard boto3 chain (environment, profile, instance or task role) or
from an assumed role; they never pass through the console's database. `AWS_ENDPOINT_URL` (read by
boto3 itself) points every client at a stand-in such as the sandbox's moto server.

An assumed role's credentials refresh themselves (botocore's RefreshableCredentials with its
AssumeRoleCredentialFetcher): a client made at the start of a run keeps working however long the
run lasts, past as many expiries as it takes. Each AssumeRole names the run it is for
(`opsconsole-run-<id>`, see role_session()), so CloudTrail shows which run did what, and sends
AWS_ROLE_EXTERNAL_ID when the console has one. Sessions are not thread-safe (botocore's docs
say so): each thread gets its own; the credentials, which are, are shared by every thread that
assumes the same role for the same run.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    Credentials,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import ClientError, NoCredentialsError
from django.conf import settings

RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5, read_timeout=30)
# What the Poller retries after botocore's own retries gave up: botocore's standard-mode throttling
# and transient codes (botocore/retries/standard.py, "Retries" in the boto3 guide), but for
# LimitExceededException, which in ECS, ELBv2 and most services is a quota, not a throttle; and the
# server-side faults of the services the console calls (ECS and ECR ServerException, Secrets
# Manager and CloudWatch InternalServiceError, S3 InternalError and ServiceUnavailable).
TRANSIENT_CODES = frozenset(
    {
        # Throttling (botocore's _THROTTLED_ERROR_CODES)
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        # Transient (botocore's _TRANSIENT_ERROR_CODES)
        "RequestTimeout",
        "RequestTimeoutException",
        # Server-side faults
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServiceError",
        "ServerException",
    }
)

DEFAULT_SESSION_NAME = "opsconsole"
_session_name: ContextVar[str] = ContextVar("aws_role_session_name", default=DEFAULT_SESSION_NAME)
CACHE_SIZE = 32  # (region, role, external id, session name) kept per thread, and credentials overall

_loader = None
_loader_lock = threading.Lock()
_credentials: OrderedDict[tuple, Credentials] = OrderedDict()
_credentials_lock = threading.Lock()
_local = threading.local()


def _new_session(credentials: Credentials | None = None, **kwargs) -> boto3.Session:
    """A fresh session (credentials and configuration read now, as ever) that shares one loader
    of AWS's service models with every other: reading them from disk made each new client cost
    ~0.2 s, which a deploy paid for every client it made (bench/orchestration.py).
    `credentials`, when given, are the only ones it uses."""
    global _loader
    core = botocore.session.get_session()
    if credentials is not None:
        core.register_component("credential_provider", CredentialResolver([_Given(credentials)]))
    with _loader_lock:
        if _loader is None:
            _loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _loader)
        session = boto3.Session(botocore_session=core, **kwargs)
        # boto3 adds its own data folder to the loader's search path at every session: once will do.
        paths = _loader.search_paths
        paths[:] = list(dict.fromkeys(paths))
    return session


class _Given(CredentialProvider):
    """A credential provider that hands out the credentials it was given (an assumed role's)."""

    METHOD = CANONICAL_NAME = "assume-role"

    def __init__(self, credentials: Credentials):
        super().__init__()
        self.credentials = credentials

    def load(self) -> Credentials:
        return self.credentials


@contextmanager
def role_session(name: str) -> Iterator[None]:
    """Assume roles under `name` (RoleSessionName: 2-64 of [\\w+=,.@-]) in this context; the
    runner names each run's `opsconsole-run-<id>`. Threads a job starts use the default name."""
    token = _session_name.set(name)
    try:
        yield
    finally:
        _session_name.reset(token)


def run_session_name(run_id: int) -> str:
    return f"opsconsole-run-{run_id}"


def _assumed_role_credentials(region: str, role_arn: str, external_id: str, session_name: str) -> Credentials:
    """Refreshing credentials of the role, shared by every thread (RefreshableCredentials lock
    their own refresh). Nothing is asked of STS until a client first signs a request."""
    key = (region, role_arn, external_id, session_name)
    with _credentials_lock:
        credentials = _credentials.get(key)
        if credentials is not None:
            _credentials.move_to_end(key)
            return credentials
        source = _new_session(region_name=region).get_credentials()
        if source is None:
            raise NoCredentialsError()
        extra_args = {"RoleSessionName": session_name}
        if external_id:
            extra_args["ExternalId"] = external_id
        fetcher = AssumeRoleCredentialFetcher(
            client_creator=_sts_clients(region),
            source_credentials=source,
            role_arn=role_arn,
            extra_args=extra_args,
        )
        credentials = DeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials, method="assume-role")
        _credentials[key] = credentials
        while len(_credentials) > CACHE_SIZE:
            _credentials.popitem(last=False)
        return credentials


def _sts_clients(region: str) -> Callable[..., object]:
    """What makes the STS client an assumed role refreshes itself with: one client (clients are
    thread-safe; refreshes may happen on any thread) for as long as the source credentials stay
    the same, so that a refresh costs one AssumeRole and not a new client as well."""
    made: dict[tuple, object] = {}
    lock = threading.Lock()

    def create_client(service: str, **kwargs):
        key = (service, *sorted(kwargs.items()))
        with lock:
            if key not in made:
                made.clear()  # the source credentials changed: the old client is of no more use
                made[key] = _new_session(region_name=region).client(service, config=RETRY_CONFIG, **kwargs)
            return made[key]

    return create_client


def _session(region: str, role_arn: str = "") -> boto3.Session:
    """This thread's session for the region and role (a new one each time without a role)."""
    if not role_arn:
        return _new_session(region_name=region)
    key = (region, role_arn, getattr(settings, "AWS_ROLE_EXTERNAL_ID", "") or "", _session_name.get())
    sessions = _local.__dict__.setdefault("sessions", OrderedDict())
    session = sessions.get(key)
    if session is None:
        session = _new_session(_assumed_role_credentials(*key), region_name=region)
        sessions[key] = session
        while len(sessions) > CACHE_SIZE:
            sessions.popitem(last=False)
    sessions.move_to_end(key)
    return session


def forget_credentials() -> None:
    """Drop every cached assumed-role credential and this thread's sessions (tests; a rotated
    source credential)."""
    with _credentials_lock:
        _credentials.clear()
    _local.__dict__.pop("sessions", None)


def client(service: str, region: str, role_arn: str = ""):
    return _session(region, role_arn).client(service, config=RETRY_CONFIG)


def is_transient(error: Exception) -> bool:
    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in TRANSIENT_CODES


def error_code(error: Exception) -> str:
    return error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""


class StepFailed(Exception):
    """A step did not succeed; the message says why in the operator's terms."""


CANCEL_CHECK_SECONDS = 1.0


@dataclass
class Poller:
    """Sleeps between polls, retries transient AWS errors, and tells the job to stop on cancel."""

    log: Callable[[str], None]
    interval: float = 5.0
    check_cancel: Callable[[], None] = lambda: None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    max_transient_retries: int = 8

    def call(self, fn: Callable, **kwargs):
        """One AWS call; throttling and 5xx are retried with backoff and logged."""
        delay = max(self.interval, 0.05)
        for attempt in range(1, self.max_transient_retries + 1):
            try:
                return fn(**kwargs)
            except ClientError as exc:
                if not is_transient(exc) or attempt == self.max_transient_retries:
                    raise
                code = exc.response["Error"]["Code"]
                self.log(f"AWS answered {code} to {fn.__name__}; retrying in {delay:.1f}s (attempt {attempt}).")
                self.pause(delay)
                delay = min(delay * 2, 30)
        raise AssertionError("unreachable")

    def wait(self):
        self.pause(self.interval)

    def pause(self, seconds: float) -> None:
        """Sleep `seconds`, looking for a cancel at least every CANCEL_CHECK_SECONDS, so a cancel
        is noticed within about a second whatever the poll interval or the backoff."""
        left = seconds
        while True:
            self.check_cancel()
            if left <= 0:
                return
            step = min(left, CANCEL_CHECK_SECONDS)
            self.sleep(step)
            left -= step
