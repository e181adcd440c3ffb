"""Notices: notable states that are not a run's transition (a backup policy past its recovery
point), which an app finds and whoever delivers notifications sends on its periodic sweep.

An app registers a source with `register_notice_source(fn)`; `fn(now)` yields the notices that
hold now. Each carries an episode key: the same episode is delivered once, a new one (a newer
backup that is still too old) again. The core names neither the sources nor the listener."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Notice:
    event: str  # a notification event code, e.g. "backup.overdue"
    environment: object  # the Environment it concerns
    episode: str  # delivered once per episode
    facts: dict = field(default_factory=dict)


NoticeSource = Callable[[datetime], Iterable[Notice]]
NOTICE_SOURCES: list[NoticeSource] = []


def register_notice_source(source: NoticeSource) -> None:
    if source not in NOTICE_SOURCES:
        NOTICE_SOURCES.append(source)


def current_notices(now: datetime) -> Iterator[Notice]:
    for source in NOTICE_SOURCES:
        yield from source(now)
