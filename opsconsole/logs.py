"""Log formatting: one JSON object per line in production, plain text in the sandbox.

Every record carries the id of the request being served and of the run being executed, when
there is one, so a log search for `request_id` or `run_id` finds everything that happened for it.
No Django imports at module level: settings.LOGGING names these classes before apps are loaded.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else was passed with `extra=` and goes into the JSON.
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id", "run_id"}


def current_request_id() -> str | None:
    from opsconsole.requestctx import current_request

    request = current_request()
    return getattr(request, "request_id", None) if request is not None else None


def current_run_writer():
    # The run context is only loaded in processes that execute runs; if it was never imported,
    # no run is executing here (and importing it would import models, too early at start-up).
    context = sys.modules.get("opsconsole.runs.context")
    return context.current_writer() if context is not None else None


class ContextFilter(logging.Filter):
    """Adds `request_id` and `run_id` (None when absent) to every record, and keeps the secrets a
    run registered (`ctx.add_secret`) out of its log lines, as out of its events."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            # django.request logs 4xx/5xx after the middleware returned; the record has the request.
            record.request_id = current_request_id() or getattr(getattr(record, "request", None), "request_id", None)
        writer = current_run_writer()
        if getattr(record, "run_id", None) is None:
            record.run_id = writer.run_id if writer is not None else None
        if writer is not None and writer.secrets:
            record.msg, record.args = writer.redact(record.getMessage()), None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, run_id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "run_id": getattr(record, "run_id", None),
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key != "request" and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class PlainFormatter(logging.Formatter):
    """The sandbox format: readable text, with the request and run ids when there are any."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = [f"{name}={value}" for name in ("request_id", "run_id") if (value := getattr(record, name, None))]
        return f"{text} [{' '.join(ids)}]" if ids else text


QUIET_AT_DEBUG = ("django.db.backends", "botocore", "boto3", "s3transfer", "urllib3")


def logging_config(log_format: str, level: str) -> dict:
    """The LOGGING setting for LOG_FORMAT=json|plain."""
    formatter = "opsconsole.logs.JsonFormatter" if log_format == "json" else "opsconsole.logs.PlainFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "opsconsole.logs.ContextFilter"}},
        "formatters": {"console": {"()": formatter}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "console", "filters": ["context"]},
        },
        "root": {"handlers": ["console"], "level": level},
        # Never at DEBUG, whatever LOG_LEVEL says: the database backend logs every query with its
        # parameters, and botocore every request and response body (a task definition's
        # environment, a secret's value); either would put secrets in the logs.
        "loggers": {name: {"level": "INFO"} for name in QUIET_AT_DEBUG},
    }
