"""CloudWatch alarms as the API reference describes them, where moto 5.2 differs.

What moto lacks or answers more kindly than AWS, and what this module makes it do:

- DescribeAlarms ignores `AlarmTypes` in moto and returns composite alarms to everyone. AWS:
  "If you omit this parameter, only metric alarms are returned, even if composite alarms exist in
  the account" (DescribeAlarms, AlarmTypes). A console that asks without AlarmTypes must see no
  composite alarm, as on AWS.
- DescribeAlarms filters are combined (AlarmNames with StateValue, ...), results come in pages of
  `MaxRecords` (default 50, at most 100) with a `NextToken`, and `AlarmNames` holds at most 100
  names (the API's AlarmNames shape: max 100; MaxRecords: min 1, max 100). moto returns all at
  once and takes any number of names. AlarmNamePrefix with AlarmNames is refused ("If this
  parameter is specified, you cannot specify AlarmNames"). A name that does not exist is simply
  absent from the answer: AWS does not error, so the caller must notice.
- PutCompositeAlarm does not exist in moto (a 500). Here it creates or updates a composite alarm:
  the AlarmRule grammar of the reference (ALARM/OK/INSUFFICIENT_DATA of a name or ARN, quoted or
  not, TRUE, FALSE, AND, OR, NOT, parentheses; at most 100 children), refused with
  ValidationError "Error in AlarmRule [...]" when it does not parse, and "Could not save the
  composite alarm as alarms [...] in the alarm rule do not exist" when it names an unknown alarm.
  Its state is computed from its children's states at once ("the alarm state is immediately set
  to INSUFFICIENT_DATA. The alarm is then evaluated") and again whenever a child changes state.
- SetAlarmState on a composite alarm sticks: "It returns to its actual state only once any of its
  children alarms change state. It is also reevaluated if you update its configuration."
- PutMetricAlarm: "When this operation creates an alarm, the alarm state is immediately set to
  INSUFFICIENT_DATA. The alarm is then evaluated". The sandbox evaluates no metric data, so a new
  metric alarm ends where AWS's evaluation of an empty metric ends, per its TreatMissingData:
  notBreaching -> OK, breaching -> ALARM, missing (the default) or ignore -> INSUFFICIENT_DATA
  (moto says OK for all). "When you update an existing alarm, its state is left unchanged" (moto
  resets it to OK).

References: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html,
API_PutCompositeAlarm.html, API_PutMetricAlarm.html, API_SetAlarmState.html.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from moto.cloudwatch import models as cloudwatch_models
from moto.cloudwatch import responses as cloudwatch_responses
from moto.cloudwatch.exceptions import CloudWatchException, InvalidParameterCombination, ValidationError
from moto.core.responses import ActionResult, EmptyResult

ALARM_TYPES = ("MetricAlarm", "CompositeAlarm")
MAX_NAMES = 100  # DescribeAlarms AlarmNames, and the children of one AlarmRule
MAX_RECORDS, DEFAULT_RECORDS = 100, 50
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
# Where the evaluation of a metric without datapoints ends, per TreatMissingData (ignore keeps the
# initial INSUFFICIENT_DATA).
NO_DATA_STATE = {
    "notBreaching": "OK",
    "breaching": "ALARM",
    "ignore": "INSUFFICIENT_DATA",
    "missing": "INSUFFICIENT_DATA",
}


class InvalidNextToken(CloudWatchException):
    code = "InvalidNextToken"


# --- AlarmRule: parse and evaluate ---------------------------------------------------------------


class RuleError(ValueError):
    pass


WORD = re.compile(r"[A-Za-z_]+")


@dataclass(frozen=True)
class Rule:
    """A parsed AlarmRule: a nested tuple tree, and the alarms it names (names or ARNs)."""

    tree: tuple
    children: tuple[str, ...]


def parse_rule(text: str) -> Rule:
    """Parse the AlarmRule grammar of PutCompositeAlarm; a RuleError says where it fails."""
    pos, children = 0, []

    def error(message: str) -> RuleError:
        return RuleError(f"Error in AlarmRule [{message} at char {pos}]")

    def skip() -> None:
        nonlocal pos
        while pos < len(text) and text[pos].isspace():
            pos += 1

    def word() -> str:
        skip()
        match = WORD.match(text, pos)
        return match.group(0) if match else ""

    def expect(char: str) -> None:
        nonlocal pos
        skip()
        if pos >= len(text) or text[pos] != char:
            found = text[pos] if pos < len(text) else "end of rule"
            raise error(f"Unsupported token '{found}', expected '{char}'")
        pos += 1

    def alarm_reference() -> str:
        nonlocal pos
        skip()
        if pos < len(text) and text[pos] == '"':
            end = text.find('"', pos + 1)
            if end < 0:
                raise error("Unterminated quoted alarm name")
            name, pos = text[pos + 1 : end], end + 1
        else:
            end = text.find(")", pos)
            if end < 0:
                raise error("Unterminated function")
            name, pos = text[pos:end].strip(), end
        if not name:
            raise error("Empty alarm name")
        return name

    def factor() -> tuple:
        nonlocal pos
        skip()
        if pos < len(text) and text[pos] == "(":
            pos += 1
            inner = expression()
            expect(")")
            return inner
        keyword = word()
        if not keyword:
            raise error(f"Unsupported token '{text[pos] if pos < len(text) else 'end of rule'}'")
        pos += len(keyword)
        if keyword == "NOT":
            return ("NOT", factor())
        if keyword in ("TRUE", "FALSE"):
            return (keyword == "TRUE",)
        if keyword in STATES:
            expect("(")
            name = alarm_reference()
            expect(")")
            children.append(name)
            return ("STATE", keyword, name)
        raise error(f"Unsupported token '{keyword}'")

    def chain(operator: str, operand) -> tuple:
        nonlocal pos
        items = [operand()]
        while True:
            skip()
            if word() != operator:
                break
            pos += len(operator)
            items.append(operand())
        return items[0] if len(items) == 1 else (operator, *items)

    def conjunction() -> tuple:
        return chain("AND", factor)

    def expression() -> tuple:
        return chain("OR", conjunction)

    if not text or not text.strip():
        raise error("Empty rule")
    tree = expression()
    skip()
    if pos < len(text):
        raise error(f"Unsupported token '{text[pos]}'")
    return Rule(tree, tuple(dict.fromkeys(children)))


def alarm_name(reference: str) -> str:
    """A child named by ARN (arn:aws:cloudwatch:region:account:alarm:NAME) or by name."""
    return reference.split(":alarm:", 1)[1] if reference.startswith("arn:") and ":alarm:" in reference else reference


def evaluate(tree: tuple, state_of) -> bool:
    head = tree[0]
    if isinstance(head, bool):
        return head
    if head == "NOT":
        return not evaluate(tree[1], state_of)
    if head == "AND":
        return all(evaluate(t, state_of) for t in tree[1:])
    if head == "OR":
        return any(evaluate(t, state_of) for t in tree[1:])
    _, wanted, reference = tree
    return state_of(alarm_name(reference)) == wanted


# --- The backend: composite states follow their children -----------------------------------------


def composite_state(backend, alarm) -> str:
    rule = parse_rule(alarm.rule)
    known = backend.alarms

    def state_of(name: str) -> str | None:
        child = known.get(name)
        return child.state_value if child is not None else None

    return "ALARM" if evaluate(rule.tree, state_of) else "OK"


def parents_of(backend, name: str) -> list:
    return [
        alarm
        for alarm in backend.alarms.values()
        if alarm.rule is not None and name in {alarm_name(c) for c in parse_rule(alarm.rule).children}
    ]


def reevaluate(backend, alarm, seen: set[str] | None = None) -> None:
    """Compute a composite alarm's state from its children; pass a change up to its parents.
    A cycle stops the evaluation, as on AWS ("evaluation ... stops if CloudWatch detects a cycle")."""
    seen = set() if seen is None else seen
    if alarm.name in seen:
        return
    seen.add(alarm.name)
    state = composite_state(backend, alarm)
    if state != alarm.state_value:
        alarm.update_state(f"Composite alarm rule evaluated to {state}: {alarm.rule}", "{}", state)
        propagate(backend, alarm.name, seen)


def propagate(backend, name: str, seen: set[str] | None = None) -> None:
    for parent in parents_of(backend, name):
        reevaluate(backend, parent, seen)


_moto_put_metric_alarm = cloudwatch_models.CloudWatchBackend.put_metric_alarm
_moto_set_alarm_state = cloudwatch_models.CloudWatchBackend.set_alarm_state


def put_metric_alarm(self, name: str, *args, **kwargs):
    before = self.alarms.get(name)
    alarm = _moto_put_metric_alarm(self, name, *args, **kwargs)
    if before is not None:  # an update leaves the state as it was
        for kept in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp", "history"):
            setattr(alarm, kept, getattr(before, kept))
        return alarm
    alarm.state_value, alarm.state_reason = "INSUFFICIENT_DATA", "Unchecked: Initial alarm creation"
    if alarm.rule is None:
        treatment = alarm.treat_missing_data or "missing"
        state = NO_DATA_STATE.get(treatment, "INSUFFICIENT_DATA")
        if state != alarm.state_value:
            alarm.update_state(f"No datapoints were received; TreatMissingData is {treatment}.", "{}", state)
    else:
        reevaluate(self, alarm)
    propagate(self, name)  # a composite may still name an alarm deleted and now created again
    return alarm


def set_alarm_state(self, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
    _moto_set_alarm_state(self, alarm_name, reason, reason_data, state_value)
    propagate(self, alarm_name)


# --- The API ------------------------------------------------------------------------------------


def validation_error(value, field: str, constraint: str) -> ValidationError:
    return ValidationError(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
    )


def put_composite_alarm(self) -> EmptyResult:
    name = self._get_param("AlarmName")
    text = self._get_param("AlarmRule") or ""
    try:
        rule = parse_rule(text)
    except RuleError as exc:
        raise ValidationError(str(exc)) from None
    if len(rule.children) > MAX_NAMES:
        raise ValidationError(f"The AlarmRule can specify at most {MAX_NAMES} alarms; it names {len(rule.children)}.")
    backend = self.cloudwatch_backend
    missing = [c for c in rule.children if alarm_name(c) not in backend.alarms]
    if missing:
        raise ValidationError(
            f"Could not save the composite alarm as alarms [{', '.join(missing)}] in the alarm rule do not exist"
        )
    backend.put_metric_alarm(
        name=name,
        namespace=None,
        metric_name=None,
        comparison_operator=None,
        evaluation_periods=None,
        period=None,
        threshold=None,
        statistic=None,
        description=self._get_param("AlarmDescription"),
        dimensions=[],
        alarm_actions=self._get_param("AlarmActions", []),
        ok_actions=self._get_param("OKActions", []),
        insufficient_data_actions=self._get_param("InsufficientDataActions", []),
        actions_enabled=self._get_bool_param("ActionsEnabled"),
        rule=text,
        tags=self._get_param("Tags", []),
    )
    alarm = backend.alarms[name]
    reevaluate(backend, alarm)  # created or updated: "reevaluated if you update its configuration"
    return EmptyResult()


def describe_alarms(self) -> ActionResult:
    names = self._get_param("AlarmNames", []) or []
    prefix = self._get_param("AlarmNamePrefix")
    types = self._get_param("AlarmTypes", []) or ["MetricAlarm"]
    state = self._get_param("StateValue")
    action_prefix = self._get_param("ActionPrefix")
    limit = self._get_param("MaxRecords")
    token = self._get_param("NextToken")
    if len(names) > MAX_NAMES:
        raise validation_error(names, "alarmNames", f"Member must have length less than or equal to {MAX_NAMES}")
    if names and prefix:
        raise InvalidParameterCombination("AlarmNamePrefix and AlarmNames cannot be specified together.")
    limit = DEFAULT_RECORDS if limit is None else int(limit)
    if not 1 <= limit <= MAX_RECORDS:
        raise validation_error(limit, "maxRecords", f"Member must have value less than or equal to {MAX_RECORDS}")
    unknown = [t for t in types if t not in ALARM_TYPES]
    if unknown:
        raise validation_error(
            unknown, "alarmTypes", "Member must satisfy enum value set: [CompositeAlarm, MetricAlarm]"
        )

    alarms = sorted(self.cloudwatch_backend.alarms.values(), key=lambda a: a.name)
    wanted = set(names)
    alarms = [
        a
        for a in alarms
        if (("CompositeAlarm" if a.rule is not None else "MetricAlarm") in types)
        and (not names or a.name in wanted)
        and (not prefix or a.name.startswith(prefix))
        and (not state or a.state_value == state)
        and (not action_prefix or any(action.startswith(action_prefix) for action in a.alarm_actions))
    ]
    start = 0
    if token:
        try:
            start = int(token)
        except ValueError:
            raise InvalidNextToken("The service couldn't process the NextToken.") from None
    page = alarms[start : start + limit]
    result = {
        "MetricAlarms": [a for a in page if a.rule is None],
        "CompositeAlarms": [a for a in page if a.rule is not None],
    }
    if start + limit < len(alarms):
        result["NextToken"] = str(start + limit)
    return ActionResult(result)


def install() -> None:
    cloudwatch_models.CloudWatchBackend.put_metric_alarm = put_metric_alarm
    cloudwatch_models.CloudWatchBackend.set_alarm_state = set_alarm_state
    cloudwatch_responses.CloudWatchResponse.put_composite_alarm = put_composite_alarm
    cloudwatch_responses.CloudWatchResponse.describe_alarms = describe_alarms
