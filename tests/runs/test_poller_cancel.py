"""A job waiting on AWS (a rollout, a snapshot, a DNS change) notices a cancel within about a
second, whatever its poll interval or its backoff after throttling."""

import pytest

from opsconsole.aws import Poller


class Canceled(Exception):
    pass


def poller_canceled_after(seconds: float, **kwargs) -> tuple[Poller, list[float]]:
    slept: list[float] = []

    def check_cancel():
        if sum(slept) >= seconds:
            raise Canceled

    return Poller(log=lambda message: None, check_cancel=check_cancel, sleep=slept.append, **kwargs), slept


def test_a_cancel_during_a_long_poll_interval_is_noticed_within_a_second():
    poller, slept = poller_canceled_after(0.5, interval=30)
    with pytest.raises(Canceled):
        poller.wait()
    assert sum(slept) <= 1.0


def test_a_cancel_during_a_throttling_backoff_is_noticed_within_a_second():
    from botocore.exceptions import ClientError

    def throttled(**kwargs):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "DescribeServices")

    poller, slept = poller_canceled_after(0.5, interval=20)
    with pytest.raises(Canceled):
        poller.call(throttled)
    assert sum(slept) <= 1.0


def test_without_a_cancel_the_whole_interval_is_waited():
    poller, slept = poller_canceled_after(float("inf"), interval=5)
    poller.wait()
    assert sum(slept) == 5
