"""The AWS client factory (opsconsole/aws.py): sessions per thread, assumed-role credentials that
refresh themselves, the run's session name, and which AWS errors the Poller retries."""

from __future__ import annotations

import datetime
import threading

import pytest
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError

from opsconsole import aws

ROLE = "arn:aws:iam::123456789012:role/opsconsole-deployer"


@pytest.fixture(autouse=True)
def credentials(monkeypatch, settings):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "source")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "source")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.AWS_ROLE_EXTERNAL_ID = ""
    aws.forget_credentials()
    yield
    aws.forget_credentials()


def error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "..."}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


def sessions_in_thread(region: str, role: str) -> list:
    found = []
    thread = threading.Thread(target=lambda: found.extend([aws._session(region, role), aws._session(region, role)]))
    thread.start()
    thread.join()
    return found


def test_each_thread_gets_its_own_session_and_keeps_it():
    mine = aws._session("us-east-1", ROLE)
    theirs = sessions_in_thread("us-east-1", ROLE)

    assert aws._session("us-east-1", ROLE) is mine
    assert theirs[0] is theirs[1]
    assert theirs[0] is not mine


def test_threads_share_one_set_of_refreshing_credentials_per_role_and_run():
    mine = aws._session("us-east-1", ROLE).get_credentials()
    theirs = sessions_in_thread("us-east-1", ROLE)[0].get_credentials()

    assert isinstance(mine, RefreshableCredentials)
    assert theirs is mine
    with aws.role_session(aws.run_session_name(7)):
        assert aws._session("us-east-1", ROLE).get_credentials() is not mine


def test_sessions_share_the_model_loader():
    first, second = aws._session("us-east-1", ROLE), aws._session("us-east-1")
    assert first._session.get_component("data_loader") is second._session.get_component("data_loader")


def test_a_session_without_a_role_reads_the_standard_chain():
    assert aws._session("us-east-1").get_credentials().access_key == "source"


def assume_role_params(session_name: str | None = None) -> dict:
    """The AssumeRole a client of the role would send, as botocore's fetcher builds it."""
    sent = {}

    def fake_create_client(region):
        class FakeSTS:
            def assume_role(self, **params):
                sent.update(params)
                expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
                return {
                    "Credentials": {
                        "AccessKeyId": "ASIAEXAMPLE",
                        "SecretAccessKey": "secret",
                        "SessionToken": "token",
                        "Expiration": expires,
                    },
                    "AssumedRoleUser": {"Arn": f"arn:aws:sts::123456789012:assumed-role/x/{params['RoleSessionName']}"},
                }

        return lambda service, **kwargs: FakeSTS()

    original = aws._sts_clients
    aws._sts_clients = fake_create_client
    try:
        if session_name:
            with aws.role_session(session_name):
                aws._session("us-east-1", ROLE).get_credentials().get_frozen_credentials()
        else:
            aws._session("us-east-1", ROLE).get_credentials().get_frozen_credentials()
    finally:
        aws._sts_clients = original
    return sent


def test_a_run_assumes_the_role_under_its_own_name_with_the_external_id(settings):
    settings.AWS_ROLE_EXTERNAL_ID = "external-id-1"

    sent = assume_role_params(aws.run_session_name(42))

    assert sent == {"RoleArn": ROLE, "RoleSessionName": "opsconsole-run-42", "ExternalId": "external-id-1"}


def test_outside_a_run_the_session_is_named_opsconsole_and_no_external_id_is_sent():
    assert assume_role_params() == {"RoleArn": ROLE, "RoleSessionName": "opsconsole"}


@pytest.mark.parametrize(
    "code",
    [
        "SlowDown",
        "PriorRequestNotComplete",
        "ServerException",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "ServiceUnavailable",
        "InternalError",
        "InternalServiceError",
        "RequestTimeout",
    ],
)
def test_throttling_and_server_faults_are_transient(code):
    assert aws.is_transient(error(code))


@pytest.mark.parametrize(
    "code",
    ["LimitExceededException", "AccessDenied", "ExpiredToken", "ExpiredTokenException", "ServiceNotFoundException"],
)
def test_quotas_refusals_and_expired_credentials_are_not(code):
    assert not aws.is_transient(error(code))


def test_a_throttled_call_is_retried_by_the_poller():
    answers = [error("SlowDown", 503), error("PriorRequestNotComplete"), "done"]
    logged = []

    def call():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    poller = aws.Poller(log=logged.append, interval=0.01, sleep=lambda seconds: None)
    assert poller.call(call) == "done"
    assert [line.split(" to ")[0] for line in logged] == [
        "AWS answered SlowDown",
        "AWS answered PriorRequestNotComplete",
    ]
