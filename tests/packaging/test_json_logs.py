"""JSON log lines carry the request id and the run id."""

import json
import logging

from opsconsole.logs import ContextFilter, JsonFormatter, PlainFormatter
from opsconsole.requestctx import reset_current_request, set_current_request
from opsconsole.runs.context import capture


class FakeRequest:
    request_id = "req-123"


class FakeWriter:
    run_id = 42
    secrets: set[str] = set()

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "********")
        return text


def formatted(formatter: logging.Formatter, message: str = "hello %s", *args, **extra) -> str:
    record = logging.LogRecord("opsconsole.test", logging.INFO, __file__, 1, message, args or ("world",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    ContextFilter().filter(record)
    return formatter.format(record)


def test_a_line_outside_any_request_or_run_has_null_ids():
    line = json.loads(formatted(JsonFormatter()))
    assert line["message"] == "hello world"
    assert (line["level"], line["logger"]) == ("INFO", "opsconsole.test")
    assert line["request_id"] is None and line["run_id"] is None


def test_a_line_inside_a_request_and_a_run_carries_both_ids_and_its_extras():
    token = set_current_request(FakeRequest())
    try:
        with capture(FakeWriter()):
            line = json.loads(formatted(JsonFormatter(), environment="staging"))
    finally:
        reset_current_request(token)
    assert (line["request_id"], line["run_id"], line["environment"]) == ("req-123", 42, "staging")


def test_an_exception_is_one_json_line_with_its_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    ContextFilter().filter(record)
    text = JsonFormatter().format(record)
    assert "\n" not in text
    assert "ValueError: boom" in json.loads(text)["exc_info"]


def test_plain_lines_name_the_ids_only_when_there_are_some():
    assert formatted(PlainFormatter()).endswith("INFO opsconsole.test hello world")
    with capture(FakeWriter()):
        assert formatted(PlainFormatter()).endswith("hello world [run_id=42]")


def test_a_secret_the_run_registered_never_reaches_a_log_line():
    writer = FakeWriter()
    writer.secrets = {"hunter2"}
    with capture(writer):
        line = json.loads(formatted(JsonFormatter(), "password is %s", "hunter2"))
    assert line["message"] == "password is ********"
