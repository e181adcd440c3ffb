"""The sandbox's CloudWatch rules (sandbox.strict.cloudwatch) over HTTP: what AWS answers and
refuses for alarms where moto 5.2 would answer otherwise."""

import urllib.request

import pytest
from botocore.exceptions import ClientError

from sandbox.bootstrap import clients

pytestmark = pytest.mark.integration

BOTH = ["MetricAlarm", "CompositeAlarm"]


@pytest.fixture
def cloudwatch(sandbox_endpoint):
    urllib.request.urlopen(urllib.request.Request(f"{sandbox_endpoint}/moto-api/reset", method="POST"))
    return clients(sandbox_endpoint)("cloudwatch")


def metric_alarm(cloudwatch, name: str, **extra) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/ApplicationELB",
        MetricName="UnHealthyHostCount",
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        **extra,
    )


def states(cloudwatch, *names: str) -> dict[str, str]:
    found = cloudwatch.describe_alarms(AlarmNames=list(names), AlarmTypes=BOTH)
    return {a["AlarmName"]: a["StateValue"] for a in found["MetricAlarms"] + found["CompositeAlarms"]}


def error(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_without_alarm_types_only_metric_alarms_are_returned(cloudwatch):
    metric_alarm(cloudwatch, "blue", TreatMissingData="notBreaching")
    cloudwatch.put_composite_alarm(AlarmName="hosts", AlarmRule="ALARM(blue)")

    plain = cloudwatch.describe_alarms(AlarmNames=["blue", "hosts"])
    assert [a["AlarmName"] for a in plain["MetricAlarms"]] == ["blue"] and plain["CompositeAlarms"] == []
    composite = cloudwatch.describe_alarms(AlarmNames=["blue", "hosts"], AlarmTypes=["CompositeAlarm"])
    assert composite["MetricAlarms"] == [] and [a["AlarmRule"] for a in composite["CompositeAlarms"]] == ["ALARM(blue)"]


def test_an_unknown_name_is_simply_absent(cloudwatch):
    metric_alarm(cloudwatch, "blue")
    assert list(states(cloudwatch, "blue", "bleu")) == ["blue"]


def test_a_composite_alarm_follows_its_children_by_name_or_arn(cloudwatch):
    metric_alarm(cloudwatch, "blue", TreatMissingData="notBreaching")
    metric_alarm(cloudwatch, "green", TreatMissingData="notBreaching")
    green_arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:green"
    cloudwatch.put_composite_alarm(AlarmName="hosts", AlarmRule=f'ALARM(blue) OR ALARM("{green_arn}")')
    cloudwatch.put_composite_alarm(AlarmName="page", AlarmRule="ALARM(hosts) AND NOT OK(blue)")
    assert states(cloudwatch, "hosts", "page") == {"hosts": "OK", "page": "OK"}

    cloudwatch.set_alarm_state(AlarmName="green", StateValue="ALARM", StateReason="test")
    assert states(cloudwatch, "hosts", "page") == {"hosts": "ALARM", "page": "OK"}
    cloudwatch.set_alarm_state(AlarmName="blue", StateValue="INSUFFICIENT_DATA", StateReason="test")
    assert states(cloudwatch, "hosts", "page") == {"hosts": "ALARM", "page": "ALARM"}
    cloudwatch.set_alarm_state(AlarmName="green", StateValue="OK", StateReason="test")
    assert states(cloudwatch, "hosts", "page") == {"hosts": "OK", "page": "OK"}


def test_a_state_set_on_a_composite_alarm_holds_until_a_child_changes(cloudwatch):
    metric_alarm(cloudwatch, "blue", TreatMissingData="notBreaching")
    cloudwatch.put_composite_alarm(AlarmName="hosts", AlarmRule="ALARM(blue)")
    cloudwatch.set_alarm_state(AlarmName="hosts", StateValue="ALARM", StateReason="testing the pager")
    assert states(cloudwatch, "hosts") == {"hosts": "ALARM"}
    cloudwatch.set_alarm_state(AlarmName="blue", StateValue="INSUFFICIENT_DATA", StateReason="test")
    assert states(cloudwatch, "hosts") == {"hosts": "OK"}


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("ALARM(blue) AND", "Error in AlarmRule ["),
        ("()", "Error in AlarmRule ["),
        ("ALARM(blue) XOR OK(blue)", "Error in AlarmRule ["),
        ("ALARM(bleu)", "Could not save the composite alarm as alarms [bleu] in the alarm rule do not exist"),
    ],
)
def test_a_composite_alarm_with_a_bad_rule_or_an_unknown_child_is_refused(cloudwatch, rule, message):
    metric_alarm(cloudwatch, "blue")
    code, text = error(cloudwatch.put_composite_alarm, AlarmName="hosts", AlarmRule=rule)
    assert code == "ValidationError" and text.startswith(message)
    assert states(cloudwatch, "hosts") == {}


def test_a_new_metric_alarm_starts_where_its_missing_data_treatment_says_and_an_update_keeps_its_state(cloudwatch):
    metric_alarm(cloudwatch, "default")
    metric_alarm(cloudwatch, "quiet", TreatMissingData="notBreaching")
    metric_alarm(cloudwatch, "loud", TreatMissingData="breaching")
    assert states(cloudwatch, "default", "quiet", "loud") == {
        "default": "INSUFFICIENT_DATA",
        "quiet": "OK",
        "loud": "ALARM",
    }
    cloudwatch.set_alarm_state(AlarmName="quiet", StateValue="ALARM", StateReason="test")
    metric_alarm(cloudwatch, "quiet", TreatMissingData="notBreaching", AlarmDescription="updated")
    assert states(cloudwatch, "quiet") == {"quiet": "ALARM"}


def test_alarm_names_are_limited_to_100_and_answers_come_in_pages(cloudwatch):
    for i in range(60):
        metric_alarm(cloudwatch, f"alarm-{i:02}")
    code, text = error(cloudwatch.describe_alarms, AlarmNames=[f"alarm-{i}" for i in range(101)])
    assert code == "ValidationError" and "Member must have length less than or equal to 100" in text
    code, _ = error(cloudwatch.describe_alarms, MaxRecords=101)
    assert code == "ValidationError"

    first = cloudwatch.describe_alarms()
    assert len(first["MetricAlarms"]) == 50 and first["NextToken"]  # 50 by default
    rest = cloudwatch.describe_alarms(NextToken=first["NextToken"])
    assert len(rest["MetricAlarms"]) == 10 and "NextToken" not in rest
    in_alarm = cloudwatch.describe_alarms(AlarmNames=["alarm-01", "alarm-02"], StateValue="ALARM")
    assert in_alarm["MetricAlarms"] == []  # the filters combine
