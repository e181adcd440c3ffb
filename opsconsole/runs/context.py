"""What a job function gets: its run, a logger whose records become RunEvents as they happen,
cooperative cancellation and secret redaction."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from opsconsole.runs.models import Level, Run, RunEvent
from opsconsole.runs.reconnect import is_connection_error, recover_connection

JOB_LOGGER = "opsconsole.jobs"
LEVELS = {
    logging.DEBUG: Level.DEBUG,
    logging.INFO: Level.INFO,
    logging.WARNING: Level.WARNING,
    logging.ERROR: Level.ERROR,
    logging.CRITICAL: Level.ERROR,
}
_current_writer: ContextVar[EventWriter | None] = ContextVar("current_event_writer", default=None)


class RunFailed(Exception):
    """An expected failure: the run ends `failed` with this message (not `errored`)."""


class Canceled(Exception):
    """Raised by check_cancel() when someone asked the run to stop."""


class EventWriter:
    """Appends RunEvents for one run with consecutive sequence numbers, redacting secrets."""

    def __init__(self, run: Run):
        self.run_id = run.pk
        self.seq = RunEvent.objects.filter(run_id=run.pk).aggregate(m=Max("seq"))["m"] or 0
        self.secrets: set[str] = set()
        self.lost = 0  # log lines that could not be written (the database was unreachable)
        self._lock = threading.Lock()

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "********")
        return text

    def redact_data(self, value):
        """The same, through every string of an event's data (Terraform's diagnostics, a diff)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {key: self.redact_data(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_data(item) for item in value]
        return value

    def write(self, message: str, level: str = Level.INFO, data: dict | None = None) -> RunEvent:
        message = self.redact(message)
        if data and self.secrets:
            data = self.redact_data(data)
        with self._lock:
            if self.lost:
                # Say so where the gap is, so that a reader knows the log is not whole.
                self._append(
                    f"{self.lost} log line(s) could not be recorded: the database was unreachable.",
                    Level.WARNING,
                    {"lost_lines": self.lost},
                )
                self.lost = 0
            return self._append(message, level, data)

    def _append(self, message: str, level: str, data: dict | None) -> RunEvent:
        for _ in range(5):
            self.seq += 1
            try:
                with transaction.atomic():
                    return RunEvent.objects.create(
                        run_id=self.run_id, seq=self.seq, level=level, message=message, data=data or {}
                    )
            except IntegrityError:
                # Someone else (a cancel request, the reaper) appended meanwhile: catch up.
                self.seq = RunEvent.objects.filter(run_id=self.run_id).aggregate(m=Max("seq"))["m"] or 0
        raise RuntimeError(f"could not append an event to run #{self.run_id}")


def append_event(run: Run, message: str, level: str = Level.INFO, data: dict | None = None) -> RunEvent:
    """Append one event from outside the runner (the reaper, a cancel request)."""
    return EventWriter(run).write(message, level, data)


class RunEventHandler(logging.Handler):
    """Sends records of the job loggers to the run being executed in this context."""

    def emit(self, record: logging.LogRecord) -> None:
        writer = _current_writer.get()
        if writer is None:
            return
        # Twice on a lost connection: the first try may meet the connection a database restart
        # dropped while the job was busy elsewhere, the database being back; the second has a new one.
        for _ in range(2):
            try:
                data = getattr(record, "data", None)
                writer.write(record.getMessage(), LEVELS.get(record.levelno, Level.INFO), data)
                return
            except Exception as exc:  # a log line must never take the job down
                if not is_connection_error(exc):
                    self.handleError(record)
                    return
                recover_connection()
        writer.lost += 1  # noted in the log once the database is back


_handler = RunEventHandler()
_job_logger = logging.getLogger(JOB_LOGGER)
_job_logger.addHandler(_handler)
_job_logger.setLevel(logging.DEBUG)


@contextmanager
def capture(writer: EventWriter):
    token = _current_writer.set(writer)
    try:
        yield
    finally:
        _current_writer.reset(token)


def current_writer() -> EventWriter | None:
    """The event writer of the run executed in this context, for log lines (opsconsole/logs.py)."""
    return _current_writer.get()


class RunContext:
    def __init__(self, run: Run, writer: EventWriter):
        self.run = run
        self.params = run.params
        self.writer = writer
        self.log = logging.getLogger(f"{JOB_LOGGER}.{run.kind}")

    def add_secret(self, value: str) -> None:
        """Never let this value reach a run event, whatever the job logs."""
        if value:
            self.writer.secrets.add(value)

    def check_cancel(self) -> None:
        if Run.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
            raise Canceled()

    # --- The step checklist shown on the run page ------------------------------------------
    def plan(self, names: list[str]) -> None:
        """Declare the steps up front so the page shows what is still to come."""
        self.run.steps = [{"name": name, "state": StepState.PENDING} for name in names]
        self._save_steps()

    @contextmanager
    def step(self, name: str):
        """Mark a step running, then done; failed (and re-raised) if its body raises."""
        entry = self._entry(name)
        entry.update(state=StepState.RUNNING, started_at=timezone.now().isoformat())
        self._save_steps()
        self.log.info("▶ %s", name)
        try:
            yield entry
        except BaseException:
            entry.update(state=StepState.FAILED, finished_at=timezone.now().isoformat())
            self._save_steps()
            raise
        entry.update(state=StepState.DONE, finished_at=timezone.now().isoformat())
        self._save_steps()

    def skip_step(self, name: str, reason: str) -> None:
        self._entry(name).update(state=StepState.SKIPPED, note=reason)
        self._save_steps()
        self.log.info("Skipped %s: %s", name, reason)

    def _entry(self, name: str) -> dict:
        entry = next((step for step in self.run.steps if step["name"] == name), None)
        if entry is None:
            entry = {"name": name, "state": StepState.PENDING}
            self.run.steps.append(entry)
        return entry

    def _save_steps(self) -> None:
        Run.objects.filter(pk=self.run.pk).update(steps=self.run.steps)


class StepState:
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
