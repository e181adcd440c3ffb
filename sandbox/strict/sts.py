"""STS: temporary credentials expire, and AssumeRole's parameters keep AWS's bounds.

moto hands out assumed-role credentials that work forever and takes any AssumeRole input. AWS:

- **AssumeRole's inputs.** `DurationSeconds` is 900..43200 and no more than the role's
  `MaxSessionDuration` (1 hour unless the role says otherwise); `RoleSessionName` is 2..64
  characters of `[\\w+=,.@-]`; `ExternalId` 2..1224 characters of `[\\w+=,.@:/-]`. Anything else is
  refused with `ValidationError` (HTTP 400) and no credentials.
  (STS API Reference, AssumeRole: Request Parameters; IAM User Guide, "Update the maximum session
  duration for a role".) botocore itself refuses values under a minimum before sending, so what
  reaches the sandbox is the maxima and the patterns.
- **Credentials expire.** They are valid for `DurationSeconds` (default 3600) and `Expiration` in
  the response says until when. `SANDBOX_STS_CREDENTIAL_SECONDS`, when set, shortens every
  lifetime to that many seconds (and `Expiration` says so), so tests can cross expiries in seconds.
- **A request signed with expired credentials is refused**, in every service, before it does
  anything. (AWS API common errors: "ExpiredTokenException: The security token included in the
  request is expired", HTTP 403; the query and REST-XML services name it `ExpiredToken`, e.g.
  `<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code>...` from STS, IAM or
  CloudWatch; Amazon S3 Error Responses: `ExpiredToken`, "The provided token has expired.", HTTP 400;
  Amazon EC2 error codes: `RequestExpired`, which it also returns for expired temporary credentials.)
  The refusal is written in the protocol of the request (query XML, JSON, REST-XML, REST-JSON),
  so that botocore raises ClientError with that code.

The hook for the last rule is a check in front of the WSGI app that moto's server serves
(`DomainDispatcherApplication.__call__`): the access key is read from the SigV4 `Authorization`
header (or a presigned URL's `X-Amz-Credential`), looked up among moto's assumed roles, and the
request answered there if its credentials are past their `Expiration`. Requests signed with the
sandbox's static keys, and moto's own `/moto-api/`, never match.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import uuid
from urllib.parse import parse_qs

from moto.core.utils import utcnow
from moto.iam.models import iam_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sts.exceptions import STSValidationError
from moto.sts.models import STSBackend, sts_backends
from moto.sts.responses import TokenResponse

MIN_DURATION, MAX_DURATION = 900, 43200
SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")
EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}")
EXPIRED_MESSAGE = "The security token included in the request is expired"
# SigV4: "AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request, ..."
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/[^/]*/([^/]+)/aws4_request")
REST_XML_SERVICES = frozenset({"s3", "route53", "cloudfront"})

_installed = False


def credential_seconds() -> float | None:
    """The sandbox's cap on a credential's lifetime (SANDBOX_STS_CREDENTIAL_SECONDS), or None."""
    value = os.environ.get("SANDBOX_STS_CREDENTIAL_SECONDS", "").strip()
    return float(value) if value else None


def check_assume_role(params: dict, account_id: str, partition: str) -> None:
    """Refuse what AWS refuses in AssumeRole's inputs (STS API Reference, AssumeRole)."""
    name = params.get("RoleSessionName") or ""
    if not SESSION_NAME.fullmatch(name):
        raise STSValidationError(
            f"1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy constraint: "
            r"Member must satisfy regular expression pattern: [\w+=,.@-]* and have length between 2 and 64"
        )
    external_id = params.get("ExternalId")
    if external_id is not None and not EXTERNAL_ID.fullmatch(external_id):
        raise STSValidationError(
            "1 validation error detected: Value at 'externalId' failed to satisfy constraint: "
            r"Member must satisfy regular expression pattern: [\w+=,.@:\/-]* and have length between 2 and 1224"
        )
    duration = params.get("DurationSeconds")
    if duration is None:
        return
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise STSValidationError(
            f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: "
            f"Member must have value between {MIN_DURATION} and {MAX_DURATION}"
        )
    role = _known_role(params.get("RoleArn") or "", account_id, partition)
    if role is not None and duration > int(role.max_session_duration or 3600):
        raise STSValidationError("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")


def _known_role(arn: str, account_id: str, partition: str):
    """The IAM role the sandbox holds under this ARN, or None (moto lets anyone assume any ARN)."""
    match = re.match(r"arn:[\w-]+:iam::(\d{12}):role/", arn)
    try:
        return iam_backends[match.group(1) if match else account_id][partition].get_role_by_arn(arn)
    except Exception:  # moto's NotFoundException: a role the sandbox does not hold
        return None


def expiration_of(access_key_id: str) -> datetime.datetime | None:
    """When the temporary credentials with this access key expire (moto's naive UTC), or None
    when they are not temporary credentials the sandbox issued."""
    if not access_key_id.startswith("ASIA"):
        return None
    for _account, _region, backend in sts_backends.iter_backends():
        role = backend.get_assumed_role_from_access_key(access_key_id)
        if role is not None:
            return role.expiration
    return None


def signed_with(environ: dict) -> tuple[str, str]:
    """(access key id, signing service) of a SigV4 request, header or presigned; ("", "") if unsigned."""
    match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1), match.group(2)
    credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
    match = CREDENTIAL.search(f"Credential={credential}")
    return (match.group(1), match.group(2)) if match else ("", "")


def expired_token_response(environ: dict, service: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The refusal of a request signed with expired credentials, in the request's own protocol."""
    request_id = str(uuid.uuid4())
    content_type = environ.get("CONTENT_TYPE", "")
    query = "Action=" in environ.get("QUERY_STRING", "")
    if service == "s3":
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><Error><Code>ExpiredToken</Code>"
            f"<Message>The provided token has expired.</Message><RequestId>{request_id}</RequestId></Error>"
        )
        return 400, [("Content-Type", "application/xml")], body.encode()
    if content_type.startswith("application/x-amz-json"):
        headers = [("Content-Type", content_type), ("x-amzn-RequestId", request_id)]
        if environ.get("HTTP_X_AMZN_QUERY_MODE") == "true":
            # awsQueryCompatible services (CloudWatch) say which query error this is, as they would over query.
            headers.append(("x-amzn-query-error", "ExpiredToken;Sender"))
        body = {"__type": "ExpiredTokenException", "message": EXPIRED_MESSAGE}
        return 403, headers, json.dumps(body).encode()
    if service == "ec2":
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>RequestExpired</Code>"
            f"<Message>{EXPIRED_MESSAGE}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
        return 400, [("Content-Type", "text/xml")], body.encode()
    if content_type.startswith("application/x-www-form-urlencoded") or query or service in REST_XML_SERVICES:
        body = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code>"
            f"<Message>{EXPIRED_MESSAGE}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return 403, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body.encode()
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", "ExpiredTokenException"),
    ]
    return 403, headers, json.dumps({"message": EXPIRED_MESSAGE}).encode()


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True

    serve = DomainDispatcherApplication.__call__

    def refuse_expired_credentials(self, environ, start_response):
        access_key_id, service = signed_with(environ)
        expiration = expiration_of(access_key_id) if access_key_id else None
        if expiration is not None and utcnow() >= expiration:
            status, headers, body = expired_token_response(environ, service)
            reason = "Bad Request" if status == 400 else "Forbidden"
            start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(body)))])
            return [body]
        return serve(self, environ, start_response)

    DomainDispatcherApplication.__call__ = refuse_expired_credentials

    assume_role_response = TokenResponse.assume_role

    def assume_role(self):
        params = {
            "RoleArn": self._get_param("RoleArn"),
            "RoleSessionName": self._get_param("RoleSessionName"),
            "ExternalId": self._get_param("ExternalId"),
            "DurationSeconds": self._get_int_param("DurationSeconds"),
        }
        check_assume_role(params, self.current_account, self.partition)
        return assume_role_response(self)

    TokenResponse.assume_role = assume_role

    assume_role_model = STSBackend.assume_role

    def assume_role_for(self, *args, **kwargs):
        role = assume_role_model(self, *args, **kwargs)
        cap = credential_seconds()
        if cap is not None:
            role.expiration = min(role.expiration, utcnow() + datetime.timedelta(seconds=cap))
        return role

    STSBackend.assume_role = assume_role_for
