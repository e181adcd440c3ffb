"""The one AWS client factory: region, optional assumed role, endpoint override, adaptive retries.

Credentials come from the standard boto3 chain (environment, profile, instance or task role) or
from an assumed role; they never pass through the console's database. `AWS_ENDPOINT_URL` (read by
boto3 itself) points every client at a stand-in such as the sandbox's moto server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5, read_timeout=30)
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
    }
)

_sessions: dict[tuple[str, str], tuple[boto3.Session, float]] = {}
_lock = threading.Lock()


_loader = None
_loader_lock = threading.Lock()


def _new_session(**kwargs) -> boto3.Session:
    """A fresh session (credentials and configuration read now, as ever) that shares one loader
    of AWS's service models with every other: reading them from disk made each new client cost
    ~0.2 s, which a deploy paid for every client it made (bench/orchestration.py)."""
    global _loader
    core = botocore.session.get_session()
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


def _session(region: str, role_arn: str = "") -> boto3.Session:
    if not role_arn:
        return _new_session(region_name=region)
    with _lock:
        cached = _sessions.get((region, role_arn))
        if cached and cached[1] > time.time() + 300:
            return cached[0]
        sts = _new_session(region_name=region).client("sts", config=RETRY_CONFIG)
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="opsconsole")["Credentials"]
        session = _new_session(
            region_name=region,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        _sessions[(region, role_arn)] = (session, creds["Expiration"].timestamp())
        return session


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
